"""Simulated gates: deterministic behaviour, and end to end through broker, backend and API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.catalogue import get_kind
from contracts.envelope import Command
from contracts.fleet import Fleet
from contracts.validation import validate_data
from devices.kinds.gate import CHINA, GateBehaviour
from devices.population import Population
from devices.runner import device_rng
from stack.broker import BrokerProcess
from tests.helpers import ROOT, BackendProcess, wait_until

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - CHINA  # Monday 00:00 in Chongqing


def simulate(fleet: Fleet, seed: int, hours: float) -> list[tuple[Any, ...]]:
    spec = fleet.devices[0]
    gate = GateBehaviour(spec, device_rng(seed, spec.id), Population(fleet.population, seed))
    gate.start(START)
    out = []
    end = START + timedelta(hours=hours)
    while gate.next_wakeup() < end:
        due = gate.next_wakeup()
        for e in gate.wake(due):
            out.append((due, e.channel, e.type, e.data.model_dump()))
    return out


def test_same_seed_same_events_other_seed_other_events(fleet: Fleet) -> None:
    a, b = simulate(fleet, 7, 6), simulate(fleet, 7, 6)
    assert a == b and len(a) > 100
    assert simulate(fleet, 8, 6) != a


def test_gate_events_follow_the_contract_and_the_day(fleet: Fleet) -> None:
    spec = get_kind("gate")
    events = simulate(fleet, 3, 24)
    per_hour: Counter[int] = Counter()
    for due, channel, type_, data in events:
        validate_data(spec, channel, type_, data)  # every emission is valid on the wire
        if type_ == "entry-granted":
            per_hour[(due + CHINA).hour] += 1
    rush = per_hour[7] + per_hour[8]
    night = per_hour[2] + per_hour[3]
    assert rush > 5 * max(night, 1), per_hour
    granted = [d for _, _, t, d in events if t == "entry-granted"]
    within_3s = sum(d["duration_ms"] <= 3000 for d in granted) / len(granted)
    assert within_3s > 0.7  # "it takes just 3 seconds to enter the community"
    residents = [d["resident"] for d in granted if d["resident"] is not None]
    assert residents and all(r.startswith("r-") and len(r) == 18 for r in residents)


def test_lockdown_denies_entries_and_release_restores(fleet: Fleet) -> None:
    spec = fleet.devices[0]
    gate = GateBehaviour(spec, device_rng(1, spec.id), Population(10, 1))
    gate.start(START)
    params = get_kind("gate").commands["lock-down"]()
    lock = Command(command_id="c1", name="lock-down")
    assert gate.handle(lock, params, START).status == "done"
    due = gate.next_arrival
    assert all(e.type == "entry-denied" for e in gate.wake(due) if e.channel.value == "events")
    release = Command(command_id="c2", name="release")
    assert gate.handle(release, params, START).status == "done"
    assert gate.handle(release, params, START).status == "rejected"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The device path is about MQTT and behaviour; storage runs on both databases elsewhere.
    return f"sqlite:///{tmp_path / 'lijia.db'}"


@pytest.fixture
def gates(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "devices.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devices",
            "run",
            "--port",
            str(broker.port),
            "--credentials-dir",
            str(creds_dir),
            "--speed",
            "60",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def availability(backend: BackendProcess) -> dict[str, tuple[str, str | None]]:
    return {
        d["device_id"]: (d["availability"], d["availability_reason"])
        for d in backend.get("/devices")["data"]
    }


def command(backend: BackendProcess, device: str, name: str, **params: Any) -> dict[str, Any]:
    resp = backend.post(f"/devices/{device}/commands", {"name": name, "params": params})
    assert resp.status_code == 202, resp.text
    cid = resp.json()["command_id"]

    def final() -> dict[str, Any] | None:
        cmd: dict[str, Any] = backend.get(f"/commands/{cid}")
        return cmd if cmd["status"] not in ("pending", "sent", "accepted") else None

    return wait_until(final, timeout=30)  # type: ignore[no-any-return]


@pytest.mark.integration
def test_gates_online_publish_and_obey_commands(
    backend: BackendProcess, gates: subprocess.Popen[bytes], fleet: Fleet
) -> None:
    ids = {d.id for d in fleet.devices}
    wait_until(lambda: {k for k, v in availability(backend).items() if v[0] == "online"} == ids)
    wait_until(lambda: len(backend.get("/events", kind="gate")["data"]) >= 10, timeout=60)
    telemetry = wait_until(lambda: backend.get("/devices/gate-north")["telemetry"])
    assert telemetry["door"] in ("open", "closed")

    assert command(backend, "gate-north", "open-once")["status"] == "succeeded"
    assert command(backend, "gate-north", "lock-down", reason="drill")["status"] == "succeeded"
    wait_until(lambda: backend.get("/devices/gate-north")["telemetry"]["lockdown"] is True)
    assert command(backend, "gate-north", "release")["status"] == "succeeded"
    refused = command(backend, "gate-north", "release")
    assert refused["status"] == "rejected" and "not locked down" in refused["reason"]

    # Idempotent on a client-chosen command id.
    body = {"name": "open-once", "command_id": "drill-0001"}
    first = backend.post("/devices/gate-east/commands", body)
    again = backend.post("/devices/gate-east/commands", body)
    assert first.status_code == 202 and again.status_code == 200
    assert (
        len(
            [
                c
                for c in backend.get("/commands", device_id="gate-east")
                if c["command_id"] == "drill-0001"
            ]
        )
        == 1
    )


@pytest.mark.integration
def test_last_will_clean_shutdown_and_offline_command_times_out(
    backend: BackendProcess, gates: subprocess.Popen[bytes], fleet: Fleet
) -> None:
    wait_until(lambda: all(v[0] == "online" for v in availability(backend).values()))
    gates.send_signal(signal.SIGTERM)  # clean shutdown: each gate says goodbye
    gates.wait(30)
    wait_until(
        lambda: all(v == ("offline", "clean-shutdown") for v in availability(backend).values())
    )
    assert command(backend, "gate-south", "open-once")["status"] == "timed-out"


@pytest.mark.integration
def test_sigkilled_fleet_triggers_last_will(
    backend: BackendProcess, gates: subprocess.Popen[bytes]
) -> None:
    wait_until(lambda: all(v[0] == "online" for v in availability(backend).values()))
    gates.kill()  # abrupt: no goodbye, the broker publishes each Last Will
    gates.wait()
    wait_until(lambda: all(v == ("offline", "last-will") for v in availability(backend).values()))
