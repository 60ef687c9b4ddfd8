"""Simulated gates: deterministic behaviour, and end to end through broker, backend and API;
the street's size, speed and simulated clock."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters import credentials
from adapters.fleet import FLEET_SIZE_ENV, load_fleet
from backend.config import get_settings
from contracts.catalogue import get_kind
from contracts.clock import parse_speed
from contracts.envelope import Command
from contracts.fleet import Fleet
from contracts.validation import validate_data
from contracts.vocabulary import STREET_TZ
from devices.__main__ import app as devices_cli
from devices.clock import SimClock, parse_start
from devices.kinds.gate import CHINA, GateBehaviour
from devices.population import Population
from devices.runner import device_rng
from devices.street import Street
from stack.__main__ import app as stack_cli
from stack.broker import BrokerProcess
from stack.processes import ROOT, BackendProcess, devices_command, wait_until
from tests.helpers import command

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


# -- the street's size, speed and simulated clock ----------------------------------------------
def test_one_street_size_for_credentials_simulator_and_backend(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    street = load_fleet(size=40)
    ids = [d.id for d in street.devices]
    assert len(set(ids)) == 40 and street.devices[:24] == fleet.devices
    assert street.journeys_per_hour == pytest.approx(fleet.journeys_per_hour * 40 / 24)
    assert load_fleet(size=5).devices == fleet.devices[:5]
    with pytest.raises(ValueError):
        load_fleet(size=0)
    monkeypatch.delenv("LIJIA_FLEET_FILE", raising=False)
    # `python -m stack credentials --devices 40`: one password per device of that street.
    made = CliRunner().invoke(stack_cli, ["credentials", "--devices", "40", "--out", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert list(credentials.load(tmp_path).devices) == ids
    # The backend provisions load_fleet(settings.fleet_file, settings.fleet_size).
    monkeypatch.setenv(FLEET_SIZE_ENV, "40")
    settings = get_settings()
    assert settings.fleet_size == 40
    assert load_fleet(settings.fleet_file, settings.fleet_size) == street
    # `python -m devices run --devices N` reads the same variable.
    usage = CliRunner().invoke(devices_cli, ["run", "--help"], terminal_width=200).output
    assert "--devices" in usage and FLEET_SIZE_ENV in usage and "max" in usage


def test_speed_is_a_number_or_max_and_the_clock_follows() -> None:
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("60") == 60.0 and parse_speed(0.5) == 0.5
    for bad in ("0", "-1", "fast", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_speed(bad)
    assert parse_start("2026-11-23") == datetime(2026, 11, 23, tzinfo=STREET_TZ)
    assert parse_start("2026-11-23T07:00+00:00") == datetime(2026, 11, 23, 7, tzinfo=UTC)
    # As fast as possible: a virtual clock that only the runner moves, never backwards.
    fastest = SimClock(START, None)
    assert fastest.begin() == START and fastest.now() == START
    fastest.advance(START + timedelta(hours=5))
    fastest.advance(START + timedelta(hours=1))
    assert fastest.now() == START + timedelta(hours=5)
    assert fastest.monotonic_at(START + timedelta(days=9)) <= time.monotonic()
    # Accelerated: an hour of the street per second.
    fast = SimClock(START, 3600)
    fast.begin()
    time.sleep(0.05)
    assert timedelta(seconds=150) < fast.now() - START < timedelta(seconds=3600)


def test_the_street_steps_in_time_order_whatever_is_rescheduled(fleet: Fleet) -> None:
    """A command re-files its device (`touch`): when nothing else changed, every device
    publishes exactly what it would have, in the same order (only devices due at the very same
    instant may take turns differently)."""
    end = START + timedelta(hours=8)

    def run(touch_every: int) -> dict[str, list[tuple[Any, ...]]]:
        street = Street(fleet, 4)
        street.start(START)
        out: dict[str, list[tuple[Any, ...]]] = {}
        last = START
        n = 0
        while (due := street.next_due()) is not None and due < end:
            for i, ts, e in street.step():
                assert ts >= last, "simulated time never runs backwards"
                last = ts
                out.setdefault(street.specs[i].id, []).append(
                    (ts, e.type, e.correlation_id, e.data)
                )
            n += 1
            if touch_every and n % touch_every == 0:
                street.touch(n % len(street.specs))
        return out

    plain = run(0)
    assert sum(map(len, plain.values())) > 1000 and plain == run(7) == run(1)


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
        devices_command(broker.port, creds_dir, "--speed", "60"),
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
