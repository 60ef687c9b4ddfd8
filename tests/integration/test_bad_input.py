"""Bad input over MQTT and a full queue: nothing invalid stored, every rejection counted with its
reason, valid traffic unaffected, and loss never silent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.credentials import Credentials
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

TOPIC = "lijia/gate/gate-north/events"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"


def test_bad_input_is_refused_with_reasons_and_good_input_flows(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    good = [dev.send(dev.envelope()).event_id]
    base = json.loads(dev.envelope().model_dump_json())

    def variant(**changes: object) -> bytes:
        body = {**base, "event_id": "bad-" + "-".join(sorted(changes)).replace("_", ""), **changes}
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    now = datetime.now(UTC)
    bad = {
        "malformed-json": b'{"version": 1,',
        "not-utf8": b"\xc3\x28\xa0\xa1",
        "invalid-envelope": variant(seq="seven"),  # wrong type
        "invalid-envelope-missing": variant(ts=None),  # missing field (dropped below)
        "invalid-envelope-extra": variant(face_template="AAAA"),  # extra field
        "invalid-data": variant(data={"method": "face", "resident": "Wang Fang"}),
        "too-large": variant(data={"method": "card", "pad": "x" * 20_000}),
        "clock-skew-future": variant(ts=(now + timedelta(days=30)).isoformat()),
        "clock-skew-past": variant(ts=(now - timedelta(days=400)).isoformat()),
        "device-mismatch": variant(device_id="gate-south"),
    }
    for payload in bad.values():
        dev.publish_raw(TOPIC, payload)
    # A retained event where none belongs: the backend subscribes with retainAsPublished, so it
    # sees the flag even live and refuses it (test_retained.py: the broker's copy is cleared).
    retained = dev.envelope()
    dev.publish_raw(TOPIC, retained.model_dump_json().encode(), retain=True)
    # Same (boot, seq) again under a new event id: a replay, not a redelivery.
    first = dev.envelope()
    first = first.model_copy(update={"boot": "boot-1"})
    dev.send(first)
    good.append(first.event_id)
    replay = first.model_copy(update={"event_id": "replayed-1"})
    dev.send(replay)
    # The same event again (a redelivery): stored once, counted as a duplicate.
    dev.send(first)
    good.append(dev.send(dev.envelope()).event_id)
    dev.close()

    wait_until(lambda: set(good) <= set(backend.event_ids()))
    health = wait_until(lambda: backend.health()["dead_lettered"] >= 12 and backend.health())
    reasons = health["dead_letter_reasons"]
    assert reasons == {
        "malformed-json": 1,
        "not-utf8": 1,
        "invalid-envelope": 3,
        "invalid-data": 1,
        "too-large": 1,
        "clock-skew": 2,
        "device-mismatch": 1,
        "replayed-seq": 1,
        "retained": 1,
    }, reasons
    assert health["duplicates"] >= 1, health
    assert set(backend.event_ids()) == set(good)  # nothing invalid stored, all valid stored


def test_retained_event_is_refused_when_delivered_as_retained(
    broker: BrokerProcess, creds_dir: Path, creds: Credentials, tmp_path: Path
) -> None:
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    stale = dev.envelope()
    dev.publish_raw("lijia/gate/gate-east/events", stale.model_dump_json().encode(), retain=True)
    dev.close()
    # A backend whose session is new receives the retained message flagged as retained.
    backend = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "r"
    ).start()
    try:
        wait_until(lambda: backend.health()["dead_letter_reasons"].get("retained"))
        assert stale.event_id not in backend.event_ids()
    finally:
        backend.stop()


def test_queue_overflow_shows_in_health_metrics_and_gaps(
    small_queue_broker: BrokerProcess, creds_dir: Path, creds: Credentials, tmp_path: Path
) -> None:
    broker = small_queue_broker
    backend = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'o.db'}", tmp_path / "o"
    ).start()
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    sent = [dev.send(dev.envelope()).event_id for _ in range(5)]
    wait_until(lambda: len(backend.event_ids()) == 5)
    backend.stop()  # away: the broker queues at most 50 for it and drops the rest
    sent += [dev.send(dev.envelope()).event_id for _ in range(200)]
    backend.start()
    try:
        # Loss at the tail is only visible once the device speaks again: it does.
        last = dev.send(dev.envelope()).event_id
        sent.append(last)
        dev.close()
        wait_until(lambda: last in backend.event_ids())
        wait_until(lambda: backend.health()["broker_dropped"] > 0, timeout=30)
        stored = set(backend.event_ids())
        lost = len(set(sent) - stored)
        assert lost > 0
        quality = backend.get("/quality")
        assert quality["missing_total"] == lost
        assert quality["sequence_gaps"][0]["device_id"] == "gate-north"
        assert backend.health()["broker_dropped"] >= lost

        metrics = httpx.get(backend.url + "/metrics").text
        assert "lijia_broker_dropped_total" in metrics
        assert 'lijia_sequence_missing{device_id="gate-north"}' in metrics
    finally:
        backend.stop()
