"""Scenarios, drills and fault injection (`python -m scenarios`): every shipped scenario passes
against a real Mosquitto and backend; a broken expectation fails clearly; injected events carry
the run id; invalid injections are refused; record + replay into a fresh database keeps ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from adapters.credentials import Credentials
from contracts.topics import Channel
from scenarios.model import (
    SCHEMA_PATH,
    Scenario,
    load_scenario,
    needs_street,
    schema_text,
    shipped,
)
from stack.broker import BrokerProcess
from stack.processes import API_KEY, ROOT, BackendProcess, wait_until
from tests.helpers import DeviceClient


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here: the storage tests cover PostgreSQL; scenarios test the drill tooling."""
    return f"sqlite:///{tmp_path / 'lijia.db'}"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"}


def _wire(broker: BrokerProcess, creds_dir: Path) -> list[str]:
    return ["--mqtt-port", str(broker.port), "--credentials-dir", str(creds_dir)]


def _api(backend: BackendProcess) -> list[str]:
    return ["--api", backend.url, "--api-key", API_KEY]


def scenarios_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenarios", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def junit_cases(path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
    cases = []
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        bad = failure if failure is not None else error
        cases.append(
            {"name": case.get("name"), "failure": None if bad is None else bad.get("message")}
        )
    return props, cases


# -- the format -------------------------------------------------------------------------------
def test_schema_file_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "scenarios/schema.json is stale: run `python -m scenarios schema`"
    )
    assert scenarios_cli("schema", "--check").returncode == 0


def test_shipped_scenarios_are_valid_and_use_fleet_devices(fleet: Any) -> None:
    files = shipped()
    assert len(files) >= 5
    ids = {d.id for d in fleet.devices}
    for path in files:
        sc = load_scenario(path)
        devices = {s.inject.device for s in sc.steps if s.inject} | {
            s.telemetry.device for s in sc.steps if s.telemetry
        }
        assert devices <= ids, f"{path.name}: {devices - ids} not in devices/fleet.yaml"
        assert sc.expect, f"{path.name} asserts nothing"


def test_invalid_scenarios_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        Scenario.model_validate(
            {"name": "x", "steps": [{"wait": 1, "inject": {"device": "a", "type": "b"}}]}
        )
    with pytest.raises(ValueError, match="unknown step"):
        Scenario.model_validate(
            {
                "name": "x",
                "expect": [{"after": "nope", "alarm": {"device": "gate-north", "rule": "r"}}],
            }
        )
    with pytest.raises(ValueError, match="ts_offset_s"):
        Scenario.model_validate(
            {
                "name": "x",
                "steps": [{"inject": {"device": "a", "type": "b", "ts_offset_s": -200_000}}],
            }
        )
    # A command's own expectation names its step: without an id it would check nothing.
    command = {"device": "gate-north", "name": "open-once", "expect": "succeeded"}
    with pytest.raises(ValueError, match="needs an `id`"):
        Scenario.model_validate({"name": "x", "steps": [{"command": command}]})


def test_a_file_that_is_not_yaml_is_refused_like_any_invalid_scenario(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsteps: [ {wait: 1}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.yaml is not valid YAML"):
        load_scenario(broken)


# -- against the real stack -------------------------------------------------------------------


@pytest.mark.integration
def test_every_shipped_scenario_passes(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> None:
    """All shipped files that only inject, at once (each drives its own devices), each a
    separate process. Those that act on the simulator: tests/e2e/test_drills.py."""
    procs = {}
    for path in (p for p in shipped() if not needs_street(load_scenario(p))):
        report = tmp_path / f"{path.stem}.xml"
        cmd = [
            sys.executable,
            "-m",
            "scenarios",
            "run",
            str(path),
            *_api(backend),
            *_wire(broker, creds_dir),
            "--junit",
            str(report),
        ]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        procs[path] = (proc, report)
    for path, (proc, report) in procs.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{path.name} failed:\n{out}"
        props, cases = junit_cases(report)
        assert cases and all(c["failure"] is None for c in cases), f"{path.name}: {cases}"
        assert props["run_id"].startswith("run-")
        # Everything the run injected is flagged and tagged with its run id.
        events = backend.get("/events", run_id=props["run_id"], limit=1000)["data"]
        events += backend.get("/events", run_id=props["run_id"], channel="telemetry")["data"]
        assert events, f"{path.name}: nothing stored for run {props['run_id']}"
        assert all(e["injected"] and e["seq"] == 0 for e in events)
    # The drills are visible, and separable from real traffic.
    assert backend.get("/events", injected="false")["data"] == []


@pytest.mark.integration
def test_broken_expectation_fails_with_a_clear_message(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text(
        """
name: broken-on-purpose
steps:
  - {id: granted, inject: {device: gate-south, type: entry-granted, data: {method: card}}}
expect:
  - name: the door is held open (it never is)
    alarm: {device: gate-south, rule: door-held-open, state: raised, within: 3}
  - name: the entry is stored
    events: {device: gate-south, type: entry-granted, at_least: 1, within: 10}
""",
        encoding="utf-8",
    )
    report = tmp_path / "broken.xml"
    t0 = time.monotonic()
    result = scenarios_cli(
        "run",
        str(scenario),
        *_api(backend),
        *_wire(broker, creds_dir),
        "--junit",
        str(report),
    )
    took = time.monotonic() - t0
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 15
    expected = "expected alarm 'door-held-open' raised on gate-south within 3 s; seen no new"
    assert expected in result.stdout, result.stdout
    assert "FAILED 1/2" in result.stdout
    props, cases = junit_cases(report)
    by_name = {c["name"]: c["failure"] for c in cases}
    assert by_name["the entry is stored"] is None
    failure = by_name["the door is held open (it never is)"]
    assert failure is not None and failure.startswith(expected)
    # The one injected event is tagged with the run id the report names.
    stored = backend.get("/events", run_id=props["run_id"])["data"]
    assert [(e["device_id"], e["type"], e["injected"]) for e in stored] == [
        ("gate-south", "entry-granted", True)
    ]


@pytest.mark.integration
def test_a_step_that_raises_ends_the_run_with_an_error_not_a_traceback(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> None:
    """A time 30,000 years ahead overflows while the step is prepared: the run still ends with
    its verdicts, the error named, the JUnit report written and exit code 1."""
    scenario = tmp_path / "overflow.yaml"
    scenario.write_text(
        """
name: far-future
steps:
  - id: odd
    inject: {device: gate-south, type: entry-granted, data: {method: card},
             correlation_id: "{{now+999999999999s}}"}
expect:
  - name: the entry is stored
    after: odd
    events: {device: gate-south, type: entry-granted, at_least: 1, within: 5}
""",
        encoding="utf-8",
    )
    report = tmp_path / "overflow.xml"
    result = scenarios_cli(
        "run", str(scenario), *_api(backend), *_wire(broker, creds_dir), "--junit", str(report)
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert "ERROR timeline: OverflowError" in result.stdout, out
    assert "not decided (nothing yet): the timeline stopped" in result.stdout, out
    _props, cases = junit_cases(report)
    failed = {c["name"]: c["failure"] for c in cases if c["failure"] is not None}
    assert set(failed) == {"the entry is stored", "timeline"}
    assert "OverflowError" in failed["timeline"]


@pytest.mark.integration
def test_inject_cli_publishes_as_the_device_and_refuses_invalid_payloads(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path
) -> None:
    wire = _wire(broker, creds_dir)
    ok = scenarios_cli(
        "inject",
        "--device",
        "gate-east",
        "--type",
        "tailgating",
        "--data",
        '{"extra_people": 2}',
        "--correlation-id",
        "drill-42",
        "--run-id",
        "run-cli-test",
        *wire,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    sent = json.loads(ok.stdout.strip().splitlines()[-1])
    assert sent["topic"] == "lijia/gate/gate-east/events"
    event = wait_until(lambda: backend.get("/events", run_id="run-cli-test")["data"])[0]
    assert event["event_id"] == sent["event_id"]
    assert (event["injected"], event["seq"], event["correlation_id"]) == (True, 0, "drill-42")
    assert event["data"] == {"extra_people": 2}
    wait_until(lambda: any(a["rule"] == "tailgating" for a in backend.get("/alarms")))

    bad = scenarios_cli(
        "inject", "--device", "gate-east", "--type", "tailgating", "--data", '{"extra_people": 99}',
        *wire,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "invalid-data: extra_people" in bad.stderr
    assert "99" not in bad.stderr  # reasons name fields, never values
    for args, reason in (
        (["--type", "no-such-event", "--data", "{}"], "unknown-event-type"),
        (["--type", "tailgating", "--data", "[1]"], "must be a JSON object"),
        (["--type", "tailgating", "--data", "{oops"], "not JSON"),
    ):
        res = scenarios_cli("inject", "--device", "gate-east", *args, *wire)
        assert res.returncode == 2 and reason in res.stderr, res.stderr
    res = scenarios_cli("inject", "--device", "gate-nowhere", "--type", "tailgating", *wire)
    assert res.returncode == 2 and "unknown device 'gate-nowhere'" in res.stderr
    assert backend.get("/events", device_id="gate-east", limit=10)["data"] == [event]


@pytest.mark.integration
def test_record_and_replay_into_a_fresh_database_keeps_event_ids(
    broker: BrokerProcess,
    backend: BackendProcess,
    creds_dir: Path,
    creds: Credentials,
    tmp_path: Path,
) -> None:
    recording = tmp_path / "burst.jsonl"
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scenarios",
            "record",
            "--out",
            str(recording),
            "--duration",
            "4",
            *_wire(broker, creds_dir),
        ],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert recorder.stdout is not None
    first_line = recorder.stdout.readline()
    assert "recording for 4 s" in first_line, first_line

    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    sent = [dev.send(dev.envelope()).event_id for _ in range(45)]
    for i in range(5):
        telemetry = {"door": "closed", "people_in": i, "people_out": 0, "avg_entry_ms": 2000}
        env = dev.envelope("telemetry", telemetry)
        sent.append(dev.send(env, channel=Channel.TELEMETRY).event_id)
    dev.close()
    rest, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, rest
    assert "recorded 50 messages" in rest, rest
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert len(lines) == 50 and all("t" in x and "topic" in x for x in lines)
    wait_until(lambda: len(all_ids(backend)) == 50)
    backend.stop()

    # A second backend on a fresh database, with its own ingest session.
    fresh = BackendProcess(
        broker.port,
        creds_dir,
        f"sqlite:///{tmp_path / 'fresh.db'}",
        tmp_path / "fresh",
        extra_env={"LIJIA_INGEST_CLIENT_ID": "backend:ingest:fresh"},
    ).start()
    try:
        assert all_ids(fresh) == set()
        t0 = time.monotonic()
        res = scenarios_cli("replay", str(recording), "--speed", "4", *_wire(broker, creds_dir))
        assert res.returncode == 0, res.stdout + res.stderr
        assert "replayed 50 messages" in res.stdout
        span = (
            datetime.fromisoformat(lines[-1]["t"]) - datetime.fromisoformat(lines[0]["t"])
        ).total_seconds()
        assert time.monotonic() - t0 >= max(0.0, span / 4 - 1)  # timing kept, 4x faster
        wait_until(lambda: all_ids(fresh) == set(sent), timeout=15)

        # Replaying into the database that already holds them stores nothing new, by design.
        dupes = fresh.health()["duplicates"]
        again = scenarios_cli("replay", str(recording), "--speed", "0", *_wire(broker, creds_dir))
        assert again.returncode == 0, again.stderr
        wait_until(lambda: fresh.health()["duplicates"] >= dupes + 50, timeout=15)
        assert all_ids(fresh) == set(sent)
    finally:
        fresh.stop()


def all_ids(backend: BackendProcess) -> set[str]:
    return set(backend.event_ids()) | set(backend.event_ids(channel="telemetry"))
