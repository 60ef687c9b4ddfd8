"""Identity bound at the broker (the shipped Mosquitto config with its dynamic security plugin):
a device's credentials work only with its own device id as client id, so no device can end or
take over another device's, the backend's or the simulator's session; a device writes only under
its own kind and id; and neither the broker nor the backend logs a secret."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from adapters.credentials import Credentials
from backend.config import Settings
from contracts.envelope import Envelope, new_id
from contracts.topics import LEVEL_RE
from contracts.validation import dumps
from stack.broker import BrokerProcess
from stack.processes import API_KEY, READ_KEY, BackendProcess, Simulator, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 135  # MQTT 5 reason code "Not authorized" (CONNACK and PUBACK)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"  # the broker's rules do not depend on it


class Session:
    """A plain MQTT 5 session that records its CONNACK, disconnects, PUBACKs and messages."""

    def __init__(
        self, port: int, username: str, password: str, client_id: str, will: str | None = None
    ) -> None:
        self.connack: ReasonCode | None = None
        self.disconnects = 0
        self.got: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        self.answered = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(will, b'{"status": "offline", "reason": "last-will"}', 1, True)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.answered.wait(10), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if self.connack is None:
            self.connack = reason
        if reason.is_failure:
            self.c.disconnect()  # no reconnect loop for a refused session
        self.answered.set()

    def _on_disconnect(self, *_a: Any) -> None:
        if self.connack is not None and not self.connack.is_failure:
            self.disconnects += 1

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self.pubacks[mid] = int(reason.value)

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes) -> int:
        """The PUBACK's reason code."""
        info = self.c.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.pubacks, timeout=10)
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def broker_log(broker: BrokerProcess) -> str:
    """The broker's whole log: Mosquitto buffers its stdout until it exits."""
    broker.stop()
    return broker.log_path.read_text()


def envelope(kind: str, seq: int) -> Envelope:
    data = {"method": "card", "duration_ms": 1500}
    return Envelope(event_id=new_id(), device_id="gate-north", kind=kind, type="entry-granted",
                    seq=seq, ts=datetime.now(UTC), data=data)  # fmt: skip


def intrude(port: int, username: str, password: str, client_id: str) -> ReasonCode | None:
    attempt = Session(port, username, password, client_id)
    attempt.close()
    return attempt.connack


def test_a_gates_credentials_with_another_gates_client_id_are_refused(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    # Issue 14: one gate's credentials with another gate's client id knocked that gate off.
    victim = Session(
        broker.port, "gate-south", creds.devices["gate-south"], "gate-south",
        will="lijia/gate/gate-south/state",
    )  # fmt: skip
    assert victim.accepted
    victim.c.subscribe("lijia/gate/gate-south/commands", qos=1)
    online = b'{"status": "online", "reason": "connected"}'
    victim.c.publish("lijia/gate/gate-south/state", online, qos=1, retain=True)
    twin = wait_until(
        lambda: (d := backend.get("/devices/gate-south"))["availability"] == "online" and d
    )
    for _ in range(5):
        reason = intrude(broker.port, "gate-north", creds.devices["gate-north"], "gate-south")
        assert reason is not None and int(reason.value) == NOT_AUTHORIZED, reason
    # The victim's session was never touched: a command sent now reaches it, and a takeover
    # would have fired its Last Will (offline) before this command went out.
    assert backend.post("/devices/gate-south/commands", {"name": "open-once"}).status_code == 202
    wait_until(lambda: any(t == "lijia/gate/gate-south/commands" for t, _ in victim.got))
    assert victim.disconnects == 0 and victim.c.is_connected()
    after = backend.get("/devices/gate-south")
    assert after["availability"] == "online"
    assert after["availability_changed_at"] == twin["availability_changed_at"]
    victim.close()
    assert "already connected" not in broker_log(broker)


def test_a_devices_credentials_cannot_take_the_backends_or_the_simulators_client_id(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials, tmp_path: Path
) -> None:
    # Issue 14: with the backend's client id and a device's credentials, the backend was kicked
    # off twice and 40 of 100 events were lost. The ids are public now (and in the log).
    ingest_id = Settings(credentials_dir=tmp_path).ingest_id()
    simulator = Session(broker.port, "simulator", str(creds.simulator_password), "simulator:sim-1")
    assert simulator.accepted
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    thief = ("gate-longtang", creds.devices["gate-longtang"])
    sent: list[str] = []
    for i in range(100):
        sent.append(dev.send(dev.envelope()).event_id)
        if i % 10 == 0:
            for stolen in (ingest_id, "simulator:sim-1"):
                reason = intrude(broker.port, *thief, stolen)
                assert reason is not None and int(reason.value) == NOT_AUTHORIZED, reason
    dev.close()
    wait_until(lambda: set(sent) <= set(backend.event_ids(device_id="gate-east")), timeout=30)
    assert backend.health()["broker_connected"]
    assert simulator.disconnects == 0 and simulator.c.is_connected()
    simulator.close()
    assert f"as {ingest_id} (" in broker_log(broker)
    assert "already connected" not in broker_log(broker)


def test_a_device_cannot_publish_under_another_kind(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    # Issue 14: the ACL had `+` at the kind level; the broker accepted lijia/{other kind}/{id}.
    spy = Session(broker.port, "backend", creds.backend_password, "test:spy")
    subscribed = threading.Event()
    spy.c.on_subscribe = lambda *_a: subscribed.set()
    spy.c.subscribe("lijia/+/+/events", qos=1)
    assert subscribed.wait(10)
    gate = Session(broker.port, "gate-north", creds.devices["gate-north"], "gate-north")
    forged, genuine = envelope("stereo", 0), envelope("gate", 1)
    assert gate.publish("lijia/stereo/gate-north/events", dumps(forged)) == NOT_AUTHORIZED
    assert gate.publish("$CONTROL/dynamic-security/v1", b"{}") == NOT_AUTHORIZED
    assert gate.publish("lijia/gate/gate-north/events", dumps(genuine)) == 0
    wait_until(lambda: genuine.event_id in backend.event_ids(device_id="gate-north"))
    wait_until(lambda: spy.got)
    gate.close()
    # One publisher's messages arrive in order: the forged one would have come first.
    assert [t for t, _ in spy.got] == ["lijia/gate/gate-north/events"]
    assert forged.event_id not in backend.event_ids()
    # Nor may anyone rewrite identities and rights over the plugin's administration topic.
    remove = b'{"commands": [{"command": "deleteRole", "rolename": "device:gate-north"}]}'
    assert spy.publish("$CONTROL/dynamic-security/v1", remove) == NOT_AUTHORIZED
    spy.close()


# A client id the broker logs is public: a device's id, or a service's name with a `:`.
PUBLIC_SERVICE_ID = re.compile(r"^(backend|simulator|scenario|test):[a-z0-9:.-]+$")
LOGGED_CLIENT_ID = re.compile(r"New client connected from \S+ as (\S+) \(")


def test_no_secret_reaches_the_broker_or_backend_log(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials, creds_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    sim = Simulator(broker.port, creds_dir, tmp_path / "sim.log", "--speed", "60",
                    "--only", "gate-north", "--only", "gate-south")  # fmt: skip
    try:
        wait_until(lambda: backend.event_ids(device_id="gate-north"), timeout=30)
        assert (
            backend.post("/devices/gate-south/commands", {"name": "open-once"}).status_code == 202
        )
        intrude(broker.port, "gate-east", "a wrong password", "gate-east")
        intrude(broker.port, "gate-east", creds.devices["gate-east"], "gate-north")
        backend.post("/devices/gate-south/commands", {"name": "open-once"}, key="not-a-key")
    finally:
        sim.stop()
    secrets = [creds.backend_password, str(creds.simulator_password), *creds.devices.values()]
    secrets += [API_KEY, READ_KEY]
    logs = {
        "broker": broker_log(broker),
        "backend": backend.log(),
        "simulator": sim.text(),
    }
    for name, text in logs.items():
        assert text, name
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{len(leaked)} secret(s) in the {name} log"
    # No client id derived from a secret either: each one logged is a device id or public.
    logged = LOGGED_CLIENT_ID.findall(logs["broker"])
    assert {"gate-north", "gate-south", "backend:ingest"} <= set(logged), logged
    for client_id in logged:
        device = LEVEL_RE.match(client_id) and client_id in creds.devices
        assert device or PUBLIC_SERVICE_ID.match(client_id), client_id
