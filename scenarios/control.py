"""Drills on the running simulator: publish an action on its control topic as the backend user
and wait until simulators answer for every device (contracts/simulation.py)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from adapters import credentials
from adapters.fleet import device_kinds
from contracts.envelope import new_id
from contracts.simulation import (
    ACK_TOPIC,
    CONTROL_TOPIC,
    Action,
    Control,
    ControlAck,
    Target,
    resolve,
)
from scenarios.wire import Connection, ScenarioError, open_session

ACK_TIMEOUT_S = 10.0


class SimulatorLink:
    """One MQTT session as the backend user, opened on first use."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.client: mqtt.Client | None = None
        self._street: dict[str, str] | None = None
        self._acks: dict[str, list[ControlAck]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._refused = ""

    def street(self) -> dict[str, str]:
        if self._street is None:
            self._street = device_kinds(self.conn.fleet_file, self.conn.fleet_size)
        return self._street

    def resolve(self, target: Target) -> list[str]:
        try:
            devices = resolve(target, self.street())
        except ValueError as exc:
            raise ScenarioError(f"{exc}: not in the fleet file {self.conn.fleet_file}") from None
        if not devices:
            raise ScenarioError("the target names no device")
        return devices

    def _connect(self) -> mqtt.Client:
        if self.client is not None:
            return self.client
        try:
            password = credentials.load(self.conn.credentials_dir).backend_password
        except (OSError, ValueError, KeyError) as exc:
            where = self.conn.credentials_dir
            raise ScenarioError(f"cannot read credentials in {where}: {exc}") from None

        def on_ack(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                ack = ControlAck.model_validate_json(msg.payload)
            except ValidationError:
                return
            with self._lock:
                if ack.id in self._acks:
                    self._acks[ack.id].append(ack)

        def on_subscribed(
            _c: mqtt.Client,
            _u: Any,
            _mid: int,
            codes: list[ReasonCode],
            _p: Properties | None,
        ) -> None:
            # A refused subscription (ACL) would make every drill look unanswered: say so.
            if any(code.is_failure for code in codes):
                self._refused = "the broker refused the subscription to the drill answers"
            self._subscribed.set()

        def subscribe(c: mqtt.Client) -> None:
            c.on_message = on_ack
            c.on_subscribe = on_subscribed
            c.subscribe(ACK_TOPIC, qos=1)

        client_id = f"scenario:drills:{uuid.uuid4().hex[:12]}"
        client = open_session(self.conn, client_id, credentials.BACKEND_USER, password, subscribe)
        deadline = time.monotonic() + 10
        while not self._subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._subscribed.is_set() or self._refused:
            client.disconnect()
            client.loop_stop()
            raise ScenarioError(
                self._refused or "the broker did not confirm the drill session's subscription"
            )
        self.client = client
        return client

    def send(self, devices: list[str], action: Action, run_id: str | None) -> int:
        """Apply `action` to `devices`; returns how many simulators took part. Raises when a
        device is hosted by no running simulator, or its simulator refused the action."""
        client = self._connect()
        control = Control(id=new_id(), devices=devices, do=action, run_id=run_id)
        with self._lock:
            self._acks[control.id] = []
        try:
            info = client.publish(CONTROL_TOPIC, control.model_dump_json(), qos=1)
            info.wait_for_publish(10)
        except (RuntimeError, ValueError) as exc:  # paho: not connected, or its queue is full
            with self._lock:
                del self._acks[control.id]
            raise ScenarioError(f"could not send the drill to the simulators: {exc}") from None
        wanted = set(devices)
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while True:
            with self._lock:
                acks = list(self._acks[control.id])
            answered = {d for a in acks for d in (*a.applied, *a.refused)}
            if answered >= wanted or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        with self._lock:
            del self._acks[control.id]
        refused = {d: why for a in acks for d, why in a.refused.items()}
        if refused:
            device, why = next(iter(sorted(refused.items())))
            raise ScenarioError(f"the simulator refused {action.action} on {device}: {why}")
        missing = sorted(wanted - answered)
        if missing:
            raise ScenarioError(
                f"no running simulator hosts {', '.join(missing[:3])}"
                f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}: start the street "
                "with `python -m stack up` (or `python -m devices run`) on this broker"
            )
        return len({a.simulator for a in acks})

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
