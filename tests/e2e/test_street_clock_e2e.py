"""The street's clock end to end: the real simulator (24 devices) steering street time, the real
backend following it, injections from the API and the CLI, a skewed gate, pause and resume from
the API, and a newcomer's first minute at night (issue 13's "Done when").

Every process is real: Mosquitto with broker_config/, `python -m devices run`, the backend on
SQLite, `python -m scenarios inject`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.alarms import EventRule
from contracts.clock import ClockView
from contracts.kinds.gate import SPEC as GATE
from contracts.vocabulary import STREET_TZ
from devices.calendar import is_day_off
from devices.clock import parse_start
from stack.broker import BrokerProcess
from stack.processes import ROOT, BackendProcess, Simulator, clean_env, wait_until

pytestmark = pytest.mark.integration

STREET = 24  # devices in devices/fleet.yaml
SPEED = 60


def _a_workday_tuesday_far_from_today() -> str:
    """09:00 of a Tuesday that is a workday, at least a week from today: a fixed date would one
    day be the day the suite runs (2026-12-08 was, and the check that the street is far from the
    wall clock caught it)."""
    day = date.today() + timedelta(days=7)
    while day.weekday() != 1 or is_day_off(day):
        day += timedelta(days=1)
    return f"{day.isoformat()}T09:00:00+08:00"


# A Tuesday morning on the street (a workday), far from the wall clock of any test run.
START = _a_workday_tuesday_far_from_today()
# How far a stamp may sit from GET /clock's reading: the injection's own round trip, at 60x.
FEW_STREET_S = 30.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"


def clock(backend: BackendProcess) -> ClockView:
    return ClockView.model_validate(backend.get("/clock"))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def online(backend: BackendProcess) -> bool:
    devices = backend.get("/devices")["data"]
    return bool(sum(d["availability"] == "online" for d in devices) == STREET)


@pytest.fixture
def street(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[Simulator]:
    sim = Simulator(
        broker.port, creds_dir, tmp_path / "devices.log",
        "--speed", str(SPEED), "--seed", "7", "--start", START,
    )  # fmt: skip
    try:
        try:
            wait_until(lambda: online(backend) and clock(backend).source == "simulator", 60)
        except AssertionError:
            raise AssertionError(f"street not online: {sim.text()[-2000:]}") from None
        yield sim
    finally:
        sim.stop()


def cli_inject(broker: BrokerProcess, creds_dir: Path, device: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "scenarios", "inject", "--device", device, "--type", "tailgating",
         "--data", '{"extra_people": 1}', "--mqtt-port", str(broker.port),
         "--credentials-dir", str(creds_dir)],
        cwd=ROOT, env={**clean_env(), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "300"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    sent: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return sent


def injected_ids(backend: BackendProcess) -> set[str]:
    return set(backend.event_ids(injected=True))


def tailgating(backend: BackendProcess, device: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = backend.get("/alarms", device_id=device)
    return [a for a in rows if a["rule"] == "tailgating"]


def test_injections_skew_and_pause_follow_the_street_clock_at_60x(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, street: Simulator
) -> None:
    # The street's clock, not the wall's: seeded, started on a Tuesday morning, at 60x.
    view = clock(backend)
    assert view.speed == SPEED and view.seed == 7 and view.start == ts(START)
    assert abs((view.now - view.wall).total_seconds()) > 3600  # far from the wall clock

    # One gate's clock runs 600 s ahead (a drill's network fault, for an hour of street time).
    skew = {
        "name": "skewed-gate",
        "steps": [{"network": {"device": "gate-longtang", "skew_s": 600, "for_s": 3600}}],
    }
    assert backend.post("/scenarios/runs", {"scenario": skew}).status_code == 201

    # A tailgating from the API and one from the CLI, each stamped with street time.
    held_from = time.monotonic()
    before = clock(backend).now
    resp = backend.post("/events/inject", {"device_id": "gate-north", "type": "tailgating"})
    assert resp.status_code == 202, resp.text
    api_event = resp.json()["event_id"]
    cli_event = cli_inject(broker, creds_dir, "gate-south")["event_id"]
    after = clock(backend).now
    for device, event_id in (("gate-north", api_event), ("gate-south", cli_event)):
        wait_until(lambda: injected_ids(backend) >= {api_event, cli_event})
        event = backend.get(f"/events/{event_id}")
        stamped = ts(event["ts"])
        assert before - timedelta(seconds=FEW_STREET_S) <= stamped <= after, (event, before)
        # Sorted by street time it is among the newest: on the first page of the default feed.
        first_page = backend.get("/events", limit=200)["data"]
        assert event_id in {e["event_id"] for e in first_page}, device
        wait_until(lambda d=device: bool(tailgating(backend, d)))  # type: ignore[misc]

    # The rule's own street-time conditions decide when they clear: 1,800 quiet street-seconds
    # (contracts/kinds/gate.py), half a wall-minute at 60x. Ten wall-seconds on, both are open.
    [rule] = [r for r in GATE.alarms if isinstance(r, EventRule) and r.rule == "tailgating"]
    assert rule.clear_after_s is not None and rule.clear_after_s / SPEED > 10 + 5
    while time.monotonic() < held_from + 10:
        for device in ("gate-north", "gate-south"):
            assert [a["status"] for a in tailgating(backend, device)] == ["active"], device

    # The skewed gate is flagged, measured against street time at 60x; no other device is.
    wait_until(lambda: backend.get("/devices/gate-longtang")["clock_skewed"] is True, 60)
    flagged = {d["device_id"] for d in backend.get("/devices")["data"] if d["clock_skewed"]}
    assert flagged == {"gate-longtang"}

    # Pause from the API: within 2 wall-seconds every device has stopped (what was in flight
    # is stored by then); for the next 3 wall-seconds nothing more is stored, and nothing
    # stamped after the paused instant (but for the skewed gate's 600 s) ever was.
    resp = backend.post("/clock", {"action": "pause"})
    assert resp.status_code == 200, resp.text
    paused = ClockView.model_validate(resp.json()["clock"])
    assert paused.paused and clock(backend).now == paused.now
    skewed_ahead = timedelta(seconds=600 + FEW_STREET_S)

    def newest_stored() -> datetime:
        return ts(backend.get("/events", limit=1)["data"][0]["ts"])

    stopped_by = time.monotonic() + 2
    stored = backend.health()["stored"]
    while time.monotonic() < stopped_by:  # in-flight messages land
        stored = backend.health()["stored"]
    while time.monotonic() < stopped_by + 3:
        assert backend.health()["stored"] == stored
        assert newest_stored() <= paused.now + skewed_ahead

    resp = backend.post("/clock", {"action": "resume"})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: newest_stored() > paused.now + skewed_ahead, 30)
    assert not clock(backend).paused

    # A jump to the next 07:30 from the API: the street arrives there, the skipped hours are
    # not published, and no device shows a sequence gap (each began a new boot after it).
    resp = backend.post("/clock", {"action": "jump", "at": "07:30"})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: clock(backend).jumping_to is None, 60)
    target = datetime.fromisoformat(START).replace(hour=7, minute=30) + timedelta(days=1)
    assert clock(backend).now >= target
    asked = ClockView.model_validate(resp.json()["clock"]).now  # street time stood meanwhile
    skipped = backend.get(
        "/events", since=(asked + skewed_ahead).isoformat(), until=target.isoformat(), limit=5
    )["data"]
    assert skipped == [], skipped
    wait_until(lambda: len(backend.get("/events", since=target.isoformat())["data"]) >= 20, 60)
    assert backend.get("/quality")["missing_total"] == 0, backend.get("/quality")


def test_a_newcomer_at_two_in_the_morning_sees_events_within_a_minute(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> None:
    # The README's command at its defaults (speed 1, `--start demo`), as if run at 02:00 in
    # Chongqing: the demo street starts at the next lively hour instead of the dead of night.
    night = datetime.now(STREET_TZ).replace(hour=2, minute=0, second=0, microsecond=0)
    start = parse_start("demo", night.astimezone(UTC))
    assert start is not None and start.astimezone(STREET_TZ).hour == 8
    sim = Simulator(broker.port, creds_dir, tmp_path / "devices.log", "--start", start.isoformat())
    try:
        wait_until(lambda: backend.get("/events", limit=1)["data"], 60)
        rows = backend.get("/events", limit=100)["data"]
        assert {ts(r["ts"]).astimezone(STREET_TZ).hour for r in rows} >= {8}
    finally:
        sim.stop()
