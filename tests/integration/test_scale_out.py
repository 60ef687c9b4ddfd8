"""Scale-out: two backends share the ingest through an MQTT 5 shared subscription on one
PostgreSQL; every event is stored exactly once and both replicas take part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.credentials import Credentials
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, PostgresServer, wait_until
from tests.helpers import DeviceClient

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def replicas(
    broker: BrokerProcess, creds_dir: Path, postgres: PostgresServer, tmp_path: Path
) -> Iterator[list[BackendProcess]]:
    url = postgres.create_database("lijia_scale_out")
    procs: list[BackendProcess] = []
    try:
        for n in (1, 2):
            env = {"LIJIA_SHARE_GROUP": "backend", "LIJIA_INGEST_CLIENT_ID": f"backend:ingest:{n}"}
            procs.append(
                BackendProcess(broker.port, creds_dir, url, tmp_path / f"b{n}", extra_env=env)
            )
            procs[-1].start()
        yield procs
    finally:  # also when the second one fails to start
        for proc in procs:
            proc.stop()


def test_two_backends_split_the_load_and_store_each_event_once(
    broker: BrokerProcess, replicas: list[BackendProcess], creds: Credentials
) -> None:
    sent: set[str] = set()
    for device_id in ("gate-north", "gate-south", "gate-east"):
        dev = DeviceClient(broker.port, device_id, creds.devices[device_id])
        for _ in range(400):
            sent.add(dev.send(dev.envelope()).event_id)
        dev.close()
    first = replicas[0]
    wait_until(lambda: len(first.event_ids()) >= len(sent), timeout=60)
    ids = first.event_ids()
    assert len(ids) == len(set(ids)) and set(ids) == sent
    shares = [r.health()["stored"] for r in replicas]
    assert sum(shares) == len(sent), shares
    assert all(share > 0 for share in shares), f"one replica took everything: {shares}"
    # Sequence tracking is computed from what is stored, so it holds across replicas.
    assert first.get("/quality")["missing_total"] == 0
