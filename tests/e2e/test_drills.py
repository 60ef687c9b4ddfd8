"""Drills on the running simulator (contracts/simulation.py, devices/control.py): each fault
action has its effect at the backend, and the shipped scenarios that need the street pass.

The street is the real simulator (`python -m devices run`, 24 devices, real time) on a real
Mosquitto with broker_config/, and the real backend on SQLite.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.vocabulary import STREET_TZ
from scenarios.model import load_scenario, needs_street, shipped
from stack.broker import BrokerProcess
from stack.processes import API_KEY, ROOT, BackendProcess, Simulator, clean_env, wait_until

pytestmark = pytest.mark.integration

STREET = 24  # devices in devices/fleet.yaml


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: the storage suite covers PostgreSQL; here the drills are under test."""
    return f"sqlite:///{tmp_path / 'lijia.db'}"


@pytest.fixture
def street(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[Simulator]:
    """The whole street at real time (as `python -m stack up` runs it), every device online."""
    sim = Simulator(broker.port, creds_dir, tmp_path / "devices.log", "--speed", "1")

    def online() -> bool:
        devices = backend.get("/devices")["data"]
        return bool(sum(d["availability"] == "online" for d in devices) == STREET)

    try:
        try:
            wait_until(online, timeout=60)
        except AssertionError:
            raise AssertionError(f"street not online: {sim.text()[-2000:]}") from None
        yield sim
    finally:
        sim.stop()


def start_scenario(
    path: Path, broker: BrokerProcess, backend: BackendProcess, creds_dir: Path
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "scenarios", "run", str(path), "--api", backend.url,
           "--api-key", API_KEY, "--mqtt-port", str(broker.port),
           "--credentials-dir", str(creds_dir)]  # fmt: skip
    env = {**clean_env(), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_scenario(
    path: Path, broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, timeout: float
) -> tuple[int, str]:
    """Exit code and output (stdout and stderr together)."""
    proc = start_scenario(path, broker, backend, creds_dir)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def events(backend: BackendProcess, device: str, channel: str = "events") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = backend.get("/events", device_id=device, channel=channel, limit=1000, cursor=cursor)
        rows += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


FAULTS = """
name: every-fault-action
description: each fault action on its own device, all at once
steps:
  # Traffic to work on: two arrivals a second at each gate under network trouble.
  - id: traffic
    at: 0
    load: {kind: gate, per_hour: 7200, for_s: 25}
  - {network: {device: gate-north, drop: 0.3, for_s: 20}}
  - {network: {device: gate-south, duplicate: 1.0, for_s: 20}}
  - {network: {device: gate-east, corrupt: 0.3, for_s: 20}}
  - {network: {device: gate-lijia-west, reorder: 0.3, for_s: 20}}
  - {network: {device: gate-tianyue-south, delay_s: 2, for_s: 20}}
  - id: skewed
    network: {device: gate-longtang, skew_s: 600, for_s: 20}
  - id: camera
    fault: {device: gate-longtang, fault: camera-failure, for_s: 5}
  - id: jam
    fault: {device: gate-north, fault: door-jam, for_s: 60}
  - id: cooler
    fault: {device: cabinet-civic-centre, fault: cooler-failure, for_s: 5}
  - id: drift
    fault: {device: cabinet-lijia-garden, fault: sensor-drift, drift_per_min: 60, for_s: 120}
  - id: unplugged
    offline: {device: stereo-smart-park, mode: abrupt, for_s: 8}
  - id: switched-off
    offline: {device: property-app-longtang, mode: clean, for_s: 8}
  - id: long-outage
    offline: {device: service-centre-lijia, mode: abrupt, for_s: 3600}
  - id: cut-short
    at: 8
    offline: {device: service-centre-lijia, mode: abrupt, for_s: 2}
  - {wait: 25}
expect:
  - name: a skewed clock is flagged on the twin
    after: skewed
    twin: {device: gate-longtang, field: clock_skewed, value: true, within: 20}
  - name: the camera failure raises its alarm
    after: camera
    alarm: {device: gate-longtang, rule: camera-fault, state: raised, within: 10}
  - name: and the camera comes back by itself
    after: camera
    alarm: {device: gate-longtang, rule: camera-fault, state: cleared, within: 20}
  - name: a jammed gate door is reported held open
    after: jam
    alarm: {device: gate-north, rule: door-held-open, state: raised, within: 60}
  - name: the cooler failure raises its alarm
    after: cooler
    alarm: {device: cabinet-civic-centre, rule: cooler-fault, state: raised, within: 10}
  - name: and the repaired cooler clears it
    after: cooler
    alarm: {device: cabinet-civic-centre, rule: cooler-fault, state: cleared, within: 20}
  - name: a drifting sensor reads far out of band
    after: drift
    twin: {device: cabinet-lijia-garden, field: telemetry.temperature_c, op: ">", value: 20,
           within: 100}
  - name: an unplugged stereo is offline by its Last Will
    after: unplugged
    twin: {device: stereo-smart-park, field: availability_reason, value: last-will, within: 10}
  - name: a switched-off app said goodbye
    after: switched-off
    twin: {device: property-app-longtang, field: availability_reason, value: clean-shutdown,
           within: 10}
  - name: an hour-long outage takes the service centre off
    after: long-outage
    twin: {device: service-centre-lijia, field: availability_reason, value: last-will, within: 7}
  - name: a newer, shorter outage replaces it and the centre is back early
    after: cut-short
    twin: {device: service-centre-lijia, field: availability, value: online, within: 20}
  - name: all come back
    after: unplugged
    devices: {field: availability, value: online, at_least: 24, within: 40}
"""


def gaps(backend: BackendProcess) -> dict[str, int]:
    return {g["device_id"]: g["missing"] for g in backend.get("/quality")["sequence_gaps"]}


def test_each_fault_action_shows_its_effect_at_the_backend(
    street: Simulator,
    broker: BrokerProcess,
    backend: BackendProcess,
    creds_dir: Path,
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "faults.yaml"
    scenario.write_text(FAULTS, encoding="utf-8")
    duplicates_before = backend.health()["duplicates"]
    code, out = run_scenario(scenario, broker, backend, creds_dir, timeout=240)
    assert code == 0 and "PASSED" in out, out

    # Drop: the lost share shows up as sequence gaps of that gate, and only there.
    missing = gaps(backend)
    assert missing.get("gate-north", 0) > 0, missing
    for clean in ("gate-south", "gate-lijia-west", "gate-tianyue-south", "gate-longtang"):
        assert clean not in missing, (clean, missing)

    # Duplicate: every message went twice; each event is stored once, counted as a duplicate.
    south = events(backend, "gate-south")
    assert len(south) == len({e["event_id"] for e in south})
    assert len(south) == len({e["seq"] for e in south})  # one boot: the simulator ran once
    assert backend.health()["duplicates"] - duplicates_before >= 20

    # Corrupt: cut-short messages are dead-lettered with their reason (the others stored).
    dead = [
        d
        for d in backend.get("/dead-letters", limit=1000)
        if d["topic"] == "lijia/gate/gate-east/events"
    ]
    assert dead and {d["reason"] for d in dead} <= {"malformed-json", "not-utf8"}, dead
    assert missing.get("gate-east", 0) >= len(dead)

    # Reorder: some messages arrive after their successor; none is lost.
    west = sorted(events(backend, "gate-lijia-west"), key=lambda e: e["id"])
    inversions = sum(a["seq"] > b["seq"] for a, b in itertools.pairwise(west))
    assert inversions > 0

    # Delay: messages reach the backend at least the delay after the device stamped them.
    def lag(e: dict[str, Any]) -> float:
        received = datetime.fromisoformat(e["received_at"])
        return (received - datetime.fromisoformat(e["ts"])).total_seconds()

    assert max(lag(e) for e in events(backend, "gate-tianyue-south")) >= 2.0

    # Skew: flagged while it lasted, stored all the same (600 s ahead, within a day).
    skewed = [e for e in events(backend, "gate-longtang") if lag(e) < -500]
    assert skewed, "no event stamped 600 s ahead was stored"


def test_a_drill_no_simulator_can_apply_fails_clearly(
    street: Simulator,
    broker: BrokerProcess,
    backend: BackendProcess,
    creds_dir: Path,
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(
        "name: bad-drill\nsteps:\n"
        "  - {fault: {device: stereo-smart-park, fault: camera-failure, for_s: 5}}\n",
        encoding="utf-8",
    )
    code, out = run_scenario(scenario, broker, backend, creds_dir, timeout=60)
    assert code != 0 and "a stereo has no camera-failure" in out, out
    street.stop()  # nobody hosts the street now
    scenario.write_text(
        "name: no-street\nsteps:\n  - {offline: {device: gate-north, for_s: 5}}\n",
        encoding="utf-8",
    )
    code, out = run_scenario(scenario, broker, backend, creds_dir, timeout=60)
    assert code != 0 and "no running simulator hosts gate-north" in out, out


def test_shipped_street_scenarios_pass_against_the_running_street(
    street: Simulator, broker: BrokerProcess, backend: BackendProcess, creds_dir: Path
) -> None:
    """Every shipped drill that acts on the simulator (the others:
    tests/integration/test_scenarios.py), side by side; those that take devices off the network
    after the others."""
    drills = [p for p in shipped() if needs_street(load_scenario(p))]
    outages = [p for p in drills if any(s.offline for s in load_scenario(p).steps)]
    assert len(drills) >= 3 and outages
    for batch in ([p for p in drills if p not in outages], outages):
        procs = {p: start_scenario(p, broker, backend, creds_dir) for p in batch}
        for path, proc in procs.items():
            out, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{path.name}:\n{out}"


# -- record ten minutes of the street, replay into a fresh database ---------------------------
def all_ids(backend: BackendProcess) -> set[str]:
    return {
        i
        for channel in ("events", "telemetry", "command-results")
        for i in backend.event_ids(channel=channel)
    }


def alarm_rows(backend: BackendProcess) -> set[tuple[Any, ...]]:
    rows = backend.get("/alarms", status="all", limit=1000)
    return {(a["device_id"], a["rule"], a["status"], a["occurrences"]) for a in rows}


def recorded_ids(path: Path) -> set[str]:
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(json.loads(line)["payload"])["event_id"])
        except (ValueError, KeyError, TypeError):
            continue  # availability (no event id)
    return ids


def test_ten_minutes_of_the_street_replay_into_a_fresh_database_identically(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> None:
    """Ten simulated minutes of a Monday morning rush (the simulator at full speed), recorded
    off the broker while a backend stores them; replayed into a second backend on a new
    database: the same event ids and the same alarms (rule, device, status, occurrences)."""
    # Device clocks run at the simulated instant, ahead of ours: no refusal, no flag.
    env = {"LIJIA_MAX_CLOCK_SKEW_S": "0", "LIJIA_CLOCK_SKEW_FLAG_S": "0"}
    today = datetime.now(STREET_TZ).date()
    monday = today + timedelta(days=7 - today.weekday())
    start = f"{monday.isoformat()}T07:30:00"
    first = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'first.db'}", tmp_path / "first",
        extra_env={**env, "LIJIA_INGEST_CLIENT_ID": "backend:ingest:first"},
    ).start()  # fmt: skip
    recording = tmp_path / "street.jsonl"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "scenarios", "record", "--out", str(recording), "--duration",
         "600", "--mqtt-port", str(broker.port), "--credentials-dir", str(creds_dir)],
        cwd=ROOT, env={**clean_env(), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert recorder.stdout is not None
        assert "recording for" in recorder.stdout.readline()
        sim = Simulator(broker.port, creds_dir, tmp_path / "devices.log", "--speed", "max",
                        "--start", start, "--hours", str(10 / 60))  # fmt: skip
        sim.wait(180)
        # Everything the devices published reaches both the recorder and the backend.
        wait_until(lambda: (ids := all_ids(first)) and ids == recorded_ids(recording), 60)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.communicate(timeout=30)
    original_ids, original_alarms = all_ids(first), alarm_rows(first)
    assert len(original_ids) > 500 and original_alarms, (len(original_ids), original_alarms)
    first.stop()

    fresh = BackendProcess(
        broker.port, creds_dir, f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "fresh",
        extra_env={**env, "LIJIA_INGEST_CLIENT_ID": "backend:ingest:fresh"},
    ).start()  # fmt: skip
    try:
        replay = subprocess.run(
            [sys.executable, "-m", "scenarios", "replay", str(recording), "--speed", "0",
             "--mqtt-port", str(broker.port), "--credentials-dir", str(creds_dir)],
            cwd=ROOT, env={**clean_env(), "NO_COLOR": "1"}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stdout + replay.stderr
        run_id = replay.stdout.rsplit("run_id", 1)[1].split()[0]
        wait_until(lambda: all_ids(fresh) == original_ids, 60)
        assert alarm_rows(fresh) == original_alarms
        # Replayed envelopes are flagged and carry the replay's run id (same event ids).
        tagged = fresh.get("/events", run_id=run_id, limit=1000)["data"]
        assert tagged and all(e["injected"] for e in tagged)
        assert fresh.get("/events", injected="false", limit=10)["data"] == []
    finally:
        fresh.stop()
