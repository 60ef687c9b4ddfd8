"""Ingest end to end through a real Mosquitto: by-hand publishes, duplicates, bad input, ACL."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from adapters.credentials import Credentials
from contracts.envelope import Envelope
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration


def mosquitto_pub(
    port: int, user: str, password: str, topic: str, payload: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mosquitto_pub")
    assert exe, "mosquitto_pub missing: run scripts/test.sh"
    return subprocess.run(
        [
            exe,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-u",
            user,
            "-i",  # a device's credentials work only with its own id as client id
            user,
            "-P",
            password,
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-t",
            topic,
            "-m",
            payload,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )


def documented_payload(event_id: str, device_id: str = "gate-north", seq: int = 1) -> str:
    """The example a newcomer copies from docs/protocol.md."""
    return json.dumps(
        {
            "version": 1,
            "event_id": event_id,
            "device_id": device_id,
            "kind": "gate",
            "type": "entry-granted",
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "data": {
                "method": "face",
                "direction": "in",
                "resident": "r-0123456789abcdef",
                "score": 0.94,
                "duration_ms": 2400,
            },
        }
    )


def test_event_published_by_hand_is_stored_once(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    payload = documented_payload("by-hand-0001")
    for _ in range(2):  # the same event twice: stored once
        res = mosquitto_pub(
            broker.port,
            "gate-north",
            creds.devices["gate-north"],
            "lijia/gate/gate-north/events",
            payload,
        )
        assert res.returncode == 0, res.stderr
    stored = wait_until(lambda: backend.get("/events", device_id="gate-north")["data"])
    wait_until(lambda: backend.health()["duplicates"] >= 1)
    ids = backend.event_ids(device_id="gate-north")
    assert ids.count("by-hand-0001") == 1
    event = stored[0]
    assert event["type"] == "entry-granted" and event["data"]["resident"] == "r-0123456789abcdef"
    assert event["injected"] is False


def test_anonymous_and_wrong_password_are_refused(
    broker: BrokerProcess, creds: Credentials
) -> None:
    def connect(user: str | None, password: str | None) -> ReasonCode | None:
        result: list[ReasonCode] = []
        # A device's credentials work only with its own id as client id.
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user or "", protocol=mqtt.MQTTv5)
        if user:
            c.username_pw_set(user, password)
        c.on_connect = lambda *a: result.append(a[3])
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        try:
            wait_until(lambda: result, timeout=10)
        finally:
            c.loop_stop()
        return result[0]

    anon = connect(None, None)
    assert anon is not None and anon.is_failure
    wrong = connect("gate-north", "not-the-password")
    assert wrong is not None and wrong.is_failure
    right = connect("gate-north", creds.devices["gate-north"])
    assert right is not None and not right.is_failure


def test_gate_cannot_publish_on_another_gates_topic(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    # gate-south, with its own valid credentials, tries to speak as gate-north.
    res = mosquitto_pub(
        broker.port,
        "gate-south",
        creds.devices["gate-south"],
        "lijia/gate/gate-north/events",
        documented_payload("impostor-1", device_id="gate-north"),
    )
    # MQTT 5 tells the publisher it was refused (3.1.1 would ack and drop silently).
    assert "not authorized" in (res.stdout + res.stderr).lower()
    # A marker on its own topic proves ingest is running and saw everything before it.
    south = DeviceClient(broker.port, "gate-south", creds.devices["gate-south"])
    marker = south.send(south.envelope())
    south.close()
    wait_until(lambda: marker.event_id in backend.event_ids())
    assert "impostor-1" not in backend.event_ids()


def test_payload_naming_another_device_is_dead_lettered(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    res = mosquitto_pub(
        broker.port,
        "gate-south",
        creds.devices["gate-south"],
        "lijia/gate/gate-south/events",
        documented_payload("claims-north", device_id="gate-north"),
    )
    assert res.returncode == 0
    dead = wait_until(lambda: backend.get("/dead-letters"))
    assert dead[0]["reason"].startswith("device-mismatch")
    assert "claims-north" not in backend.event_ids()


def test_malformed_payloads_are_dead_lettered_and_ingest_goes_on(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    topic = "lijia/gate/gate-east/events"
    good_before = dev.send(dev.envelope())
    dev.publish_raw(topic, b"{not json")
    dev.publish_raw(topic, b"\xff\xfe\x00")
    bad_data = dev.envelope(data={"method": "telepathy"})
    dev.publish_raw(topic, bad_data.model_dump_json().encode())
    extra = dict(dev.envelope().model_dump(mode="json"), name="Zhang San")
    dev.publish_raw(topic, json.dumps(extra).encode())
    good_after = dev.send(dev.envelope())
    dev.close()

    wait_until(lambda: good_after.event_id in backend.event_ids())
    reasons = [d["reason"] for d in backend.get("/dead-letters")]
    assert {r.split(":")[0] for r in reasons} == {
        "malformed-json",
        "not-utf8",
        "invalid-data",
        "invalid-envelope",
    }
    # Reasons name fields, never submitted values (they may be personal data).
    assert not any("Zhang" in r or "telepathy" in r for r in reasons)
    ids = backend.event_ids()
    assert good_before.event_id in ids and bad_data.event_id not in ids
    assert backend.health()["dead_lettered"] == 4


def test_unknown_device_is_refused_by_the_broker(broker: BrokerProcess) -> None:
    res = mosquitto_pub(
        broker.port, "gate-nowhere", "guess", "lijia/gate/gate-nowhere/events", "{}"
    )
    assert res.returncode != 0


def test_backend_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    """The oracle: the set of event ids sent equals the set stored, each once."""
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    sent: list[Envelope] = []
    done = threading.Event()

    def stream() -> None:
        for _ in range(3000):
            sent.append(dev.send(dev.envelope()))
        done.set()

    threading.Thread(target=stream, daemon=True).start()
    wait_until(lambda: backend.health()["stored"] >= 300, timeout=60)
    backend.kill()  # SIGKILL: no goodbye, unacked messages stay with the broker
    stored_before_kill = len(backend_ids_direct(backend))
    assert stored_before_kill > 0
    backend.start()
    assert done.wait(120)
    dev.close()
    expected = {e.event_id for e in sent}
    wait_until(lambda: len(backend.event_ids(device_id="gate-north")) >= len(expected), 120)
    ids = backend.event_ids(device_id="gate-north")
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == expected, f"lost {len(expected - set(ids))} events"


def backend_ids_direct(backend: BackendProcess) -> list[str]:
    """Read the database directly while the backend is down (SQLite or PostgreSQL)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(backend.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id FROM event")).all()
    engine.dispose()
    return [r[0] for r in rows]


def test_health_reports_broker_loss_and_ingest_resumes(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    broker.stop()
    wait_until(lambda: not backend.health()["broker_connected"], timeout=30)
    assert backend.health()["status"] == "degraded"
    broker.start()
    wait_until(lambda: backend.health()["broker_connected"], timeout=60)
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    env = dev.send(dev.envelope())
    dev.close()
    wait_until(lambda: env.event_id in backend.event_ids(), timeout=30)
