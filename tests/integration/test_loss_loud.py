"""Loss is loud: messages the broker dropped while the backend was away show in /health
(`degraded`, with the reason), /quality and /metrics as soon as the backend returns, before any
device speaks again; the gaps follow once one does. The shipped Mosquitto configuration with a
deliberately small queue, a real backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.credentials import Credentials
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.conftest import SMALL_QUEUE
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

QUEUE = SMALL_QUEUE  # tests/conftest.py small_queue_broker


def drop_reasons(health: dict[str, Any]) -> list[str]:
    return [r for r in health.get("reasons", []) if "broker dropped" in r]


def test_drops_while_the_backend_was_away_are_loud_before_devices_speak_again(
    small_queue_broker: BrokerProcess, creds_dir: Path, creds: Credentials, tmp_path: Path
) -> None:
    broker = small_queue_broker
    backend = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'loud.db'}", tmp_path / "b"
    ).start()
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    try:
        sent = [dev.send(dev.envelope()).event_id for _ in range(5)]
        wait_until(lambda: set(backend.event_ids()) == set(sent))
        health = backend.health()
        assert health["status"] == "ok", health
        backend.stop()

        # Away: the broker keeps QUEUE of these for the backend's session and drops the rest.
        sent += [dev.send(dev.envelope()).event_id for _ in range(200)]
        backend.start()
        health = wait_until(lambda: drop_reasons(h := backend.health()) and h, timeout=30)

        # The device has not spoken since: what the backend holds is what was queued for it.
        stored = wait_until(lambda: len(ids := set(backend.event_ids())) == 5 + QUEUE and ids)
        assert stored <= set(sent)
        lost = len(sent) - len(stored)
        assert health["status"] == "degraded"
        assert drop_reasons(health) == [f"the broker dropped {lost} messages in the last 5 min"], (
            health["reasons"]
        )
        quality = backend.get("/quality")
        assert quality["broker_drops"]["recent"] == lost, quality["broker_drops"]
        assert quality["broker_drops"]["since_backend_start"] == lost
        assert quality["broker_drops"]["broker_total"] == lost
        # No gap can show yet: the lost messages are the tail of the device's sequence.
        assert quality["missing_total"] == 0
        metrics = httpx.get(backend.url + "/metrics", timeout=10).text
        assert f"lijia_broker_dropped_recent {float(lost)}" in metrics
        assert f"lijia_broker_dropped_since_backend_start_total {float(lost)}" in metrics
        assert len(set(backend.event_ids())) == 5 + QUEUE  # still silent

        # When the device speaks again the gap shows too, and matches the drops.
        last = dev.send(dev.envelope()).event_id
        wait_until(lambda: last in set(backend.event_ids()))
        assert backend.get("/quality")["missing_total"] == lost
    finally:
        dev.close()
        backend.stop()


def test_a_backend_that_saw_the_drops_does_not_count_them_again_after_a_restart(
    small_queue_broker: BrokerProcess, creds_dir: Path, creds: Credentials, tmp_path: Path
) -> None:
    broker = small_queue_broker
    backend = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'again.db'}", tmp_path / "b"
    ).start()
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    try:
        backend.stop()
        sent = [dev.send(dev.envelope()).event_id for _ in range(QUEUE + 20)]
        backend.start()
        wait_until(lambda: backend.health()["broker_drops"]["since_backend_start"] > 0, 30)
        wait_until(lambda: len(set(backend.event_ids())) == QUEUE)
        dropped = backend.health()["broker_drops"]["since_backend_start"]
        assert dropped == len(sent) - QUEUE
        # Restarted after it saw (and kept) them: they are the broker's total, not new drops.
        backend.stop()
        backend.start()
        wait_until(lambda: backend.health()["broker_drops"]["broker_total"] == dropped, 30)
        last = dev.send(dev.envelope()).event_id
        wait_until(lambda: last in set(backend.event_ids()))
        health = backend.health()
        assert health["broker_drops"]["since_backend_start"] == 0, health
        assert health["status"] == "ok", health
    finally:
        dev.close()
        backend.stop()
