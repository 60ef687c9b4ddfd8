"""The simulator's control plane: applies drills' actions (contracts/simulation.py) to the
devices this process hosts, and answers each with the devices it applied it to.

One extra MQTT session (user `simulator`) on the runner's loop, so every action runs in the
loop's thread, between two steps of the street: no locks, and the behaviour sees the same
simulated instant a command would. Each action ends by a loop timer after `for_s` wall-clock
seconds; a newer action of the same sort on the same device supersedes the older one's end.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from adapters.mqtt import Backoff, make_client, on_connack, on_disconnected
from contracts.envelope import new_id
from contracts.simulation import (
    ACK_TOPIC,
    CONTROL_TOPIC,
    SIMULATOR_USER,
    Control,
    ControlAck,
    FaultAction,
    LoadAction,
    NetworkAction,
    OfflineAction,
)
from devices.behaviour import UnsupportedFault
from devices.faults import NetworkFaults
from devices.session import BrokerAddress, DeviceSession

if TYPE_CHECKING:
    from devices.runner import FleetRunner

log = logging.getLogger(__name__)


class SimulatorControl:
    def __init__(self, runner: FleetRunner, password: str, broker: BrokerAddress) -> None:
        self.runner = runner
        self.name = f"sim-{new_id()[:8]}"
        self.sessions = {s.device_id: (i, s) for i, s in enumerate(runner.sessions)}
        self._generation: dict[tuple[str, str], int] = {}
        self.applied = 0
        self.client = make_client(
            self.name,
            SIMULATOR_USER,
            password,
            protocol=broker.protocol,
            on_connect=on_connack(self._on_connect),
            on_disconnect=on_disconnected(self._on_disconnect),
        )
        self.client.message_callback_add(CONTROL_TOPIC, self._on_control)
        self.broker = broker
        self.loop = runner.loop
        self.closing = False
        self.backoff = Backoff()
        self.loop.attach(self.client)

    # -- session -----------------------------------------------------------------------------
    def connect(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive)
        self._reconnect()

    def _reconnect(self) -> None:
        if self.closing:
            return
        try:
            self.client.reconnect()
        except OSError:
            self._retry()

    def _retry(self) -> None:
        self.loop.call_later(self.backoff.next(), self._reconnect)

    def _on_connect(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            log.error("broker refused the simulator's control session: %s", rc)
            return
        self.backoff.reset()
        self.client.subscribe(CONTROL_TOPIC, qos=1)

    def _on_disconnect(self, _rc: ReasonCode) -> None:
        if not self.closing:
            self._retry()

    def close(self) -> None:
        self.closing = True
        self.client.disconnect()
        self.loop.detach(self.client)

    # -- actions -----------------------------------------------------------------------------
    def _on_control(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            control = Control.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("unreadable control message ignored: %s", exc.errors()[0]["msg"])
            return
        ack = ControlAck(id=control.id, simulator=self.name)
        for device_id in control.devices:
            hosted = self.sessions.get(device_id)
            if hosted is None:
                continue  # another simulator process hosts it (or none does)
            try:
                self.apply(control, *hosted)
                ack.applied.append(device_id)
            except UnsupportedFault as exc:
                ack.refused[device_id] = str(exc)
            except Exception:
                log.exception("%s: control action failed", device_id)
                ack.refused[device_id] = "the simulator failed to apply it (see its log)"
        if ack.applied or ack.refused:
            self.applied += len(ack.applied)
            what, run = control.do.action, control.run_id or "-"
            log.info("drill %s: %s on %d device(s)", run, what, len(ack.applied))
            self.client.publish(ACK_TOPIC, json.dumps(ack.model_dump(mode="json")), qos=1)

    def apply(self, control: Control, index: int, session: DeviceSession) -> None:
        do = control.do
        if not session.ready:
            raise UnsupportedFault("the device is still starting up")
        if isinstance(do, FaultAction):
            behaviour = session.behaviour
            self._emit(
                index, session, behaviour.fault(do.fault, True, session.now(), do.drift_per_min)
            )

            def repaired() -> None:
                self._emit(index, session, behaviour.fault(do.fault, False, session.now()))

            self._later(session, do.fault, do.for_s, repaired)
        elif isinstance(do, NetworkAction):
            rng = random.Random(f"{control.id}:{session.device_id}")
            session.troubled_network(NetworkFaults(do, rng, time.monotonic() + do.for_s))
            self._later(session, "network", do.for_s, session.end_network)
        elif isinstance(do, OfflineAction):
            session.leave_network(do.mode == "abrupt", do.for_s)
        elif isinstance(do, LoadAction):
            if not session.behaviour.set_load(session.now(), do.factor, do.per_hour):
                raise UnsupportedFault(f"a {session.kind} has no arrivals to change")
            self.runner.street.touch(index)

            def back_to_normal() -> None:
                session.behaviour.set_load(session.now(), None, None)
                self.runner.street.touch(index)

            self._later(session, "load", do.for_s, back_to_normal)

    def _emit(self, index: int, session: DeviceSession, emissions: list[Any]) -> None:
        now = session.now()
        for emission in emissions:
            session.emit(emission, now)
        self.runner.street.touch(index)  # its next wake-up may have moved

    def _later(
        self, session: DeviceSession, what: str, after_s: float, end: Callable[[], None]
    ) -> None:
        """Run `end` after `after_s`, unless a newer action of the same sort came meanwhile."""
        key = (session.device_id, what)
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation

        def maybe_end() -> None:
            if self._generation.get(key) == generation:
                end()

        self.loop.call_later(after_s, maybe_end)
