"""Retained copies and the state channel, through the shipped Mosquitto and a real backend: a
retained message on a channel that is never retained is dead-lettered `retained` and cleared at
the broker; a malformed `state` payload is dead-lettered and never becomes availability."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from adapters.credentials import Credentials
from adapters.mqtt import make_client
from contracts.envelope import Availability
from contracts.validation import dumps
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

GATE = "gate-north"
EVENTS, TELEMETRY, STATE = (f"lijia/gate/{GATE}/{ch}" for ch in ("events", "telemetry", "state"))


# A topic the backend may read that holds nothing retained.
BARRIER = "lijia/sim/acks"


def retained_at_broker(port: int, password: str, topics: list[str]) -> list[tuple[str, bytes]]:
    """What a fresh subscriber gets at once on `topics`: the broker's retained copies. A second
    SUBSCRIBE is the barrier: the broker sends the first one's retained messages before it
    answers the second."""
    got: list[tuple[str, bytes]] = []
    acked: set[int] = set()
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append((msg.topic, bytes(msg.payload)))

    def on_subscribe(_c: mqtt.Client, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with lock:
            acked.add(mid)

    client = make_client(f"backend:probe:{uuid.uuid4().hex[:8]}", "backend", password)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(client.is_connected, timeout=10)
        client.subscribe([(t, 1) for t in topics])
        _, barrier = client.subscribe(BARRIER, 1)
        wait_until(lambda: barrier in acked, timeout=10)
        with lock:
            return list(got)
    finally:
        client.disconnect()
        client.loop_stop()


def test_retained_event_and_garbage_telemetry_are_refused_counted_and_cleared(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, GATE, creds.devices[GATE])
    good = [dev.send(dev.envelope()).event_id]
    # The device connects as devices do: online, retained (the one channel that may be).
    online = Availability(status="online", reason="connected", ts=datetime.now(UTC))
    dev.publish_raw(STATE, dumps(online), retain=True)
    stale = dev.envelope()
    dev.publish_raw(EVENTS, dumps(stale), retain=True)
    dev.publish_raw(TELEMETRY, b"\x00\xffnot telemetry at all", retain=True)
    good.append(dev.send(dev.envelope()).event_id)
    dev.close()

    # Published after them on the same session: once it is stored, they have been judged.
    wait_until(lambda: good[-1] in set(backend.event_ids()))
    # Nothing else lost, the retained event not stored.
    assert set(backend.event_ids()) == set(good)
    # Both refused as `retained` (the garbage too: judged before its bytes), nothing else.
    letters = backend.get("/dead-letters")
    assert sorted(d["topic"] for d in letters) == sorted([EVENTS, TELEMETRY]), letters
    assert all(d["reason"].startswith("retained:") for d in letters), letters
    # The clears come back to ingest (the broker applied them): ignored, counted, not stored.
    quality = wait_until(
        lambda: (q := backend.get("/quality"))["retained_clears_ignored"] >= 2 and q
    )
    assert quality["retained_discarded"] == 2, quality
    assert quality["dead_letter_reasons"] == {"retained": 2}, quality
    assert quality["retained_clears_sent"] == 2, quality
    assert set(backend.event_ids()) == set(good)
    assert backend.get(f"/devices/{GATE}")["availability"] == "online"

    # The broker no longer holds them; the device's retained state stays.
    held = retained_at_broker(broker.port, creds.backend_password, [EVENTS, TELEMETRY, STATE])
    assert [topic for topic, _ in held] == [STATE], held

    metrics = httpx.get(backend.url + "/metrics", timeout=10).text
    assert "lijia_retained_discarded_total 2.0" in metrics
    assert "lijia_retained_clears_ignored_total 2.0" in metrics


def test_an_empty_retained_message_is_ignored_not_dead_lettered(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, GATE, creds.devices[GATE])
    online = Availability(status="online", reason="connected", ts=datetime.now(UTC))
    dev.publish_raw(STATE, dumps(online), retain=True)
    dev.publish_raw(STATE, b"", retain=True)  # the device clears its own state
    last = dev.send(dev.envelope()).event_id
    dev.close()
    # Published after the clear on the same session: once it is stored, the clear was judged.
    wait_until(lambda: last in set(backend.event_ids()))
    quality = backend.get("/quality")
    assert quality["dead_lettered"] == 0, quality["dead_letter_reasons"]
    assert quality["retained_clears_ignored"] == 1
    assert backend.get(f"/devices/{GATE}")["availability"] == "online"


def availability_payload(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# Shapes that are not the contract's availability. Those marked `today` became availability
# before: pydantic coerced them or JSON's last key won.
MALFORMED_STATE: dict[str, tuple[bytes, bool]] = {
    "garbage bytes": (b"\xc3\x28\xa0\xa1", False),
    "retained garbage": (b"offline!", True),
    "a plain string": (b'"offline"', True),
    "unknown status": (availability_payload(status="gone", reason="last-will"), True),
    "missing reason": (availability_payload(status="offline"), False),
    "an envelope on state": (
        availability_payload(status="offline", reason="last-will", seq=3),
        True,
    ),
    # today: a number where a time belongs
    "numeric ts": (availability_payload(status="offline", reason="clean-shutdown", ts=0), True),
    # today: the reason contradicts the status
    "contradiction": (availability_payload(status="offline", reason="connected"), True),
    # today: the last of two `status` keys won
    "duplicate key": (
        b'{"status": "online", "reason": "last-will", "status": "offline"}',
        True,
    ),
}


def test_malformed_state_is_dead_lettered_and_never_becomes_availability(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, GATE, creds.devices[GATE])
    online = Availability(status="online", reason="connected", ts=datetime.now(UTC))
    dev.publish_raw(STATE, dumps(online), retain=True)
    before = wait_until(
        lambda: (d := backend.get(f"/devices/{GATE}"))["availability"] == "online" and d
    )
    for payload, retain in MALFORMED_STATE.values():
        dev.publish_raw(STATE, payload, retain=retain)
    last = dev.send(dev.envelope()).event_id
    dev.close()
    wait_until(lambda: last in set(backend.event_ids()))

    n = len(MALFORMED_STATE)
    health = wait_until(lambda: (h := backend.health())["dead_lettered"] >= n and h)
    assert health["dead_lettered"] == n, health["dead_letter_reasons"]
    assert set(health["dead_letter_reasons"]) <= {
        "not-utf8",
        "malformed-json",
        "invalid-availability",
    }, health["dead_letter_reasons"]
    letters = backend.get("/dead-letters")
    assert {d["topic"] for d in letters} == {STATE}
    after = backend.get(f"/devices/{GATE}")
    assert after["availability"] == "online"
    assert after["availability_reason"] == "connected"
    assert after["availability_changed_at"] == before["availability_changed_at"]
    # The last retained garbage had replaced the device's availability at the broker: cleared,
    # so a new subscription is not handed it again.
    wait_until(lambda: backend.get("/quality")["retained_clears_sent"] >= 1)
    assert retained_at_broker(broker.port, creds.backend_password, [STATE]) == []
