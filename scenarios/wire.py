"""MQTT as the devices see it: publish a device's envelopes on its own topics (contracts.topics),
through a session of the backend user (DevicePublishers), and wait for the broker's PUBACK.

An injected envelope is stamped with the street's time (contracts/clock.py), read from the
simulators' retained clock announcements as the backend user (RetainedClock): a device of the
street lives on its clock, whatever the speed. No announcement: street time is wall time."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from adapters import credentials
from adapters.fleet import DEFAULT_FLEET, device_kinds
from adapters.mqtt import make_client
from contracts.clock import CLOCK_ACK_TOPIC, CLOCK_FILTER, ClockState, newest, street_now
from contracts.envelope import TELEMETRY_TYPE, Envelope
from contracts.injection import InvalidEnvelope, injected_envelope
from contracts.topics import Channel, Topic
from contracts.validation import ContractError, dumps


class ScenarioError(RuntimeError):
    """Something the operator must fix (unknown device, invalid payload, broker refused...)."""


@dataclass(frozen=True)
class Connection:
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: str = "5"  # "5" or "3.1.1"
    credentials_dir: Path = Path("var/credentials")
    fleet_file: Path = DEFAULT_FLEET
    fleet_size: int | None = None


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:16]}"


_TEMPLATE = re.compile(r"\{\{\s*(run_id|now)\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*s)?\s*\}\}")


def render(value: Any, run_id: str | None, now: datetime) -> Any:
    """Expand `{{run_id}}`, `{{now}}`, `{{now+30s}}`, `{{now-5s}}` in every string."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) == "run_id":
                if m.group(2):
                    raise ScenarioError("{{run_id}} takes no offset")
                return run_id or "no-run"
            offset = float(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            return (now + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")

        return _TEMPLATE.sub(sub, value)
    if isinstance(value, dict):
        return {k: render(v, run_id, now) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, run_id, now) for v in value]
    return value


@contextmanager
def worded_for_the_operator(
    kind: str, device_id: str, channel: Channel, event_type: str
) -> Iterator[None]:
    """Turn the contract's refusals of an injected envelope (contracts.injection) into
    ScenarioErrors that keep its reason (field names, never values)."""
    try:
        yield
    except InvalidEnvelope as exc:
        raise ScenarioError(exc.reason) from None
    except ContractError as exc:
        raise ScenarioError(
            f"{device_id} ({kind}) {channel.value} {event_type!r}: {exc.reason}"
        ) from None


def build_envelope(
    kind: str, device_id: str, channel: Channel, event_type: str, data: dict[str, Any]
) -> Envelope:
    """An injected envelope; raises ScenarioError when invalid."""
    with worded_for_the_operator(kind, device_id, channel, event_type):
        return injected_envelope(kind, device_id, channel, event_type, data)


def open_session(
    conn: Connection,
    client_id: str,
    username: str,
    password: str,
    on_connected: Callable[[mqtt.Client], None] | None = None,
) -> mqtt.Client:
    """A clean MQTT session with its network thread running, once the broker has accepted it
    (ScenarioError otherwise). `on_connected` runs on every (re)connection: subscribe there."""
    refused: list[str] = []
    ready = threading.Event()

    def on_connect(
        c: mqtt.Client,
        _u: Any,
        _f: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        if reason.is_failure:
            refused.append(str(reason))
            return
        if on_connected is not None:
            on_connected(c)
        ready.set()

    client = make_client(
        client_id,
        username,
        password,
        protocol=conn.protocol,
        max_inflight=100,
        on_connect=on_connect,
    )
    try:
        client.connect(conn.host, conn.port, keepalive=30)
    except OSError as exc:
        raise ScenarioError(f"cannot reach the broker at {conn.host}:{conn.port}: {exc}") from None
    client.loop_start()
    deadline = time.monotonic() + 10
    while not ready.is_set() and not refused and time.monotonic() < deadline:
        time.sleep(0.02)
    if not ready.is_set():
        client.disconnect()
        client.loop_stop()
        why = refused[0] if refused else "no answer within 10 s"
        raise ScenarioError(f"broker refused {username}: {why}")
    return client


# How long to wait for the broker to answer the clock subscription (wall seconds).
CLOCK_READ_TIMEOUT_S = 5.0


class RetainedClock:
    """The street's clock as the simulators announce it (retained), followed from the first
    use to close(): one MQTT session as the backend user."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.client: mqtt.Client | None = None
        self._states: dict[str, ClockState] = {}
        self._lock = threading.Lock()
        self._barrier: int | None = None
        self._caught_up = threading.Event()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        simulator = msg.topic.rsplit("/", 1)[-1]
        with self._lock:
            if not msg.payload:  # a simulator's Last Will (or its goodbye) clears it
                self._states.pop(simulator, None)
                return
            try:
                self._states[simulator] = ClockState.model_validate_json(msg.payload)
            except ValidationError:
                return

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, _codes: list[ReasonCode], _p: Properties | None
    ) -> None:
        if mid == self._barrier:
            self._caught_up.set()

    def _subscribe(self, c: mqtt.Client) -> None:
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        # QoS 0, so retained announcements are sent at once, ahead of later packets; the
        # broker answers a second subscription only after them: its SUBACK says "caught up".
        c.subscribe(CLOCK_FILTER, qos=0)
        _rc, self._barrier = c.subscribe(CLOCK_ACK_TOPIC, qos=0)

    def open(self) -> None:
        if self.client is not None:
            return
        try:
            password = credentials.load(self.conn.credentials_dir).backend_password
        except (OSError, ValueError, KeyError) as exc:
            where = self.conn.credentials_dir
            raise ScenarioError(f"cannot read credentials in {where}: {exc}") from None
        client_id = f"scenario:clock:{uuid.uuid4().hex[:12]}"
        self.client = open_session(
            self.conn, client_id, credentials.BACKEND_USER, password, self._subscribe
        )
        if not self._caught_up.wait(CLOCK_READ_TIMEOUT_S):
            self.close()
            raise ScenarioError("the broker did not answer the street clock's subscription")

    def state(self) -> ClockState | None:
        """The announcement to follow (None: no simulator announces)."""
        self.open()
        with self._lock:
            return newest(self._states.values())

    def now(self) -> datetime:
        """The street's time now."""
        return street_now(self.state())

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None


@dataclass
class DevicePublishers:
    """Publishes on devices' topics through one MQTT session as the backend user, opened on
    first use. Not with the devices' own credentials: the broker accepts those only with the
    device's id as client id, which would take over the simulator's session of that device
    (its Last Will would fire). The backend user may write every device channel
    (broker_config/acl); the topic, not the session, says which device a message is from."""

    conn: Connection
    clients: dict[str, mqtt.Client] = field(default_factory=dict)
    _kinds: dict[str, str] | None = None
    _clock: RetainedClock | None = None

    def street_now(self) -> datetime:
        """The street's time now, from the simulators' clock (wall time without one)."""
        if self._clock is None:
            self._clock = RetainedClock(self.conn)
        return self._clock.now()

    def kind_of(self, device_id: str) -> str:
        if self._kinds is None:
            self._kinds = device_kinds(self.conn.fleet_file, self.conn.fleet_size)
        try:
            return self._kinds[device_id]
        except KeyError:
            raise ScenarioError(
                f"unknown device {device_id!r}: not in the fleet file {self.conn.fleet_file}"
            ) from None

    def client(self, device_id: str) -> mqtt.Client:
        if not self.clients:
            try:
                password = credentials.load(self.conn.credentials_dir).backend_password
            except (OSError, ValueError, KeyError) as exc:
                raise ScenarioError(
                    f"cannot read credentials in {self.conn.credentials_dir}: {exc}"
                ) from None
            client_id = f"scenario:inject:{uuid.uuid4().hex[:12]}"
            session = open_session(self.conn, client_id, credentials.BACKEND_USER, password)
            self.clients[credentials.BACKEND_USER] = session
        return self.clients[credentials.BACKEND_USER]

    def publish_raw(self, device_id: str, topic: str, payload: bytes, retain: bool = False) -> None:
        try:
            info = self.client(device_id).publish(topic, payload, qos=1, retain=retain)
            info.wait_for_publish(10)
        except (RuntimeError, ValueError) as exc:  # paho: not connected, or its queue is full
            raise ScenarioError(f"could not publish {topic}: {exc}") from None
        if not info.is_published():
            raise ScenarioError(f"broker did not acknowledge {topic} within 10 s")

    def send(self, env: Envelope, channel: Channel) -> str:
        topic = str(Topic(env.kind, env.device_id, channel))
        self.publish_raw(env.device_id, topic, dumps(env))
        return topic

    def inject(
        self,
        device_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        channel: Channel = Channel.EVENTS,
        correlation_id: str | None = None,
        run_id: str | None = None,
        ts: datetime | None = None,
    ) -> tuple[Envelope, str]:
        """Publish an injected envelope as the device; `ts` defaults to the street's now."""
        kind = self.kind_of(device_id)
        if channel is Channel.TELEMETRY:
            event_type = TELEMETRY_TYPE
        with worded_for_the_operator(kind, device_id, channel, event_type):
            env = injected_envelope(
                kind,
                device_id,
                channel,
                event_type,
                data,
                correlation_id=correlation_id,
                run_id=run_id,
                ts=ts or self.street_now(),
            )
        return env, self.send(env, channel)

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.clients.clear()
        if self._clock is not None:
            self._clock.close()
            self._clock = None

    def __enter__(self) -> DevicePublishers:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
