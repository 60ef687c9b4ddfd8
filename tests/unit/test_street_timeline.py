"""A run's street-time timeline (scenarios/timeline.py), without a broker or a backend: street
deadlines become wall waits through the street's clock (speeds, pause, jumps, "max"), the clock
is re-read at most every REFRESH_S, and a run against a fake street keeps its offsets, pauses
and deadlines in street seconds and plays clock steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.clock import ClockAction, ClockRefused, ClockState, ClockView, check, newest
from scenarios.expectations import describe, implicit
from scenarios.model import Scenario
from scenarios.port import AlarmSeen, CommandSeen, EventQuery, EventsPage
from scenarios.progress import ClockSet, RunEvent, StepFailed, StepStarted
from scenarios.runner import Run
from scenarios.timeline import (
    POLL_S,
    REFRESH_S,
    Moment,
    StreetTimeline,
    linear,
    shows,
    street_after,
    wall_wait,
)
from scenarios.wire import Connection, DevicePublishers, ScenarioError

WALL = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # 02:00 in Chongqing
STREET = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # 07:30 in Chongqing


def state(**changes: Any) -> ClockState:
    base: dict[str, Any] = dict(
        simulator="sim-a", seq=1, wall=WALL, street=STREET, speed=60.0, seed=7, start=STREET
    )
    return ClockState.model_validate({**base, **changes})


def view(**changes: Any) -> ClockView:
    """The backend's view read at the anchor's wall instant."""
    return ClockView.of([state(**changes)], wall=WALL)


# -- pure conversion ---------------------------------------------------------------------------
def test_a_street_deadline_is_a_wall_wait_at_the_clocks_speed() -> None:
    deadline = STREET + timedelta(minutes=1)
    assert wall_wait(view(speed=60.0), 0.0, deadline) == pytest.approx(1.0)
    assert wall_wait(view(speed=60.0), 0.25, deadline) == pytest.approx(0.75)
    assert wall_wait(view(speed=1.0), 0.0, deadline) == pytest.approx(60.0)
    assert wall_wait(view(speed=0.5), 0.0, deadline) == pytest.approx(120.0)
    # Reached (or passed): no wait, whatever the clock does.
    assert wall_wait(view(speed=60.0), 2.0, deadline) == 0.0
    assert wall_wait(view(paused=True), 0.0, STREET) == 0.0
    assert street_after(view(speed=60.0), 0.5) == STREET + timedelta(seconds=30)


@pytest.mark.parametrize(
    "changes",
    [{"paused": True}, {"speed": "max"}, {"jumping_to": STREET + timedelta(hours=2)}],
    ids=["paused", "max", "jumping"],
)
def test_no_wait_is_computed_while_the_street_does_not_follow_the_wall_clock(
    changes: dict[str, Any],
) -> None:
    v = view(**changes)
    assert not linear(v)
    assert street_after(v, 30.0) == STREET  # it stays where it was announced
    assert wall_wait(v, 30.0, STREET + timedelta(seconds=1)) is None  # poll instead


def test_without_a_simulator_street_time_is_wall_time() -> None:
    v = ClockView.of([], wall=WALL)
    assert v.source == "wall" and linear(v)
    assert street_after(v, 2.5) == WALL + timedelta(seconds=2.5)
    assert wall_wait(v, 1.0, WALL + timedelta(seconds=10)) == pytest.approx(9.0)


def test_a_clock_shows_an_action_once_it_took_it() -> None:
    target = STREET + timedelta(hours=1)
    pause, resume = ClockAction(action="pause"), ClockAction(action="resume")
    faster = ClockAction(action="speed", speed=120.0)
    jump = ClockAction(action="jump", to=target)
    assert shows(pause, view(paused=True), None) and not shows(pause, view(), None)
    assert shows(resume, view(), None) and not shows(resume, view(paused=True), None)
    assert shows(faster, view(speed=120.0), None) and not shows(faster, view(), None)
    assert shows(ClockAction(action="speed", speed="max"), view(speed="max"), None)
    assert not shows(jump, view(jumping_to=target), target)
    assert not shows(jump, view(), target)  # not announced yet: still before the target
    assert shows(jump, view(street=target), target)


def test_a_moment_counts_on_either_clock() -> None:
    start = Moment(10.0, STREET)
    later = Moment(11.0, STREET + timedelta(seconds=60))
    assert start.since(later, "wall") == 1.0
    assert start.since(later, "street") == 60.0


# -- following the clock -----------------------------------------------------------------------
class FakeWall:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class ClockSource:
    """The street's clock as a port serves it: the backend's view at the fake wall's time."""

    def __init__(self, wall: FakeWall) -> None:
        self.wall, self.state, self.reads, self.down = wall, state(), 0, False

    def wall_time(self) -> datetime:
        return WALL + timedelta(seconds=self.wall.t - 100.0)

    def __call__(self) -> ClockView:
        self.reads += 1
        if self.down:
            raise ScenarioError("GET /clock unreachable")
        return ClockView.of([self.state], wall=self.wall_time())

    def operator(self, **changes: Any) -> None:
        """An operator's change, anchored now (as the simulator announces it)."""
        now = self.wall_time()
        self.state = self.state.model_copy(
            update={"wall": now, "street": self.state.street_at(now), **changes}
        )


def test_the_clock_is_reread_at_most_every_refresh_interval() -> None:
    wall = FakeWall()
    source = ClockSource(wall)
    timeline = StreetTimeline(source, monotonic=wall)
    assert timeline.now().street == STREET and source.reads == 1
    wall.t += REFRESH_S / 2
    assert timeline.now().street == STREET + timedelta(seconds=60 * REFRESH_S / 2)
    assert source.reads == 1  # projected from the last view
    wall.t += REFRESH_S / 2
    timeline.now()
    assert source.reads == 2
    timeline.view(fresh=True)
    assert source.reads == 3


def test_waits_follow_the_operators_pause_resume_and_speed_changes() -> None:
    wall = FakeWall()
    source = ClockSource(wall)
    timeline = StreetTimeline(source, monotonic=wall)
    start = timeline.now()
    # 120 street seconds at 60x: 2 wall seconds, waited in slices so changes are seen.
    assert timeline.wait_s(start, 120, "street") == pytest.approx(2.0)
    assert timeline.pause_s(start, 120, "street") == REFRESH_S
    # The operator pauses after 1 wall second (60 street seconds).
    wall.t += 1.0
    source.operator(paused=True)
    assert timeline.wait_s(start, 120, "street") is None
    assert timeline.pause_s(start, 120, "street") == POLL_S
    wall.t += 30.0  # paused: no street time passes
    assert not timeline.reached(start, 61, "street")
    # Resumed at 6x: the remaining 60 street seconds take 10 wall seconds.
    source.operator(paused=False, speed=6.0)
    wall.t += REFRESH_S
    assert timeline.wait_s(start, 120, "street") == pytest.approx(10.0 - REFRESH_S)
    wall.t += 10.0
    assert timeline.reached(start, 120, "street")
    assert timeline.pause_s(start, 120, "street") == 0.0
    # A wall-clock duration ignores the street: 41.5 wall seconds have passed since start.
    assert timeline.wait_s(start, 50, "wall") == pytest.approx(50 - 41.5)
    assert timeline.pause_s(start, 50, "wall") == pytest.approx(50 - 41.5)


def test_at_max_the_timeline_polls_and_follows_the_announcements() -> None:
    wall = FakeWall()
    source = ClockSource(wall)
    source.state = state(speed="max")
    timeline = StreetTimeline(source, monotonic=wall)
    start = timeline.now()
    assert timeline.pause_s(start, 3600, "street") == POLL_S
    wall.t += REFRESH_S
    source.state = state(speed="max", street=STREET + timedelta(hours=2))  # its progress
    assert timeline.reached(start, 3600, "street")


def test_a_clock_unreachable_later_keeps_the_last_view_but_not_at_first() -> None:
    wall = FakeWall()
    source = ClockSource(wall)
    source.down = True
    with pytest.raises(ScenarioError):
        StreetTimeline(source, monotonic=wall).now()
    source.down = False
    timeline = StreetTimeline(source, monotonic=wall)
    timeline.now()
    source.down = True
    wall.t += 1.0
    assert timeline.now().street == STREET + timedelta(seconds=60)  # projected
    reads = source.reads
    timeline.now()
    assert source.reads == reads  # not hammered: at most one try per REFRESH_S


# -- a run on the street's clock ---------------------------------------------------------------
class ClockedStreet:
    """A street with nothing in it but a simulator's clock, which obeys clock actions."""

    def __init__(self, clock: ClockState) -> None:
        self.state = clock

    def alarms(self, device_id: str, rule: str) -> list[AlarmSeen]:
        return []

    def events_page(self, query: EventQuery, cursor: int | None) -> EventsPage:
        return EventsPage([], None)

    def device(self, device_id: str) -> dict[str, Any]:
        return {"device_id": device_id, "availability": "online"}

    def devices(self, kind: str | None) -> list[dict[str, Any]]:
        return []

    def send_command(self, device_id: str, name: str, params: dict[str, Any]) -> CommandSeen:
        return CommandSeen("cmd-1", "succeeded")

    def command(self, command_id: str) -> CommandSeen:
        return CommandSeen(command_id, "succeeded")

    def clock(self) -> ClockView:
        return ClockView.of([self.state])

    def set_clock(self, action: ClockAction) -> ClockView:
        wall = datetime.now(UTC)
        now = self.state.street_at(wall)
        try:
            target = check(action, self.state, now)
        except ClockRefused as exc:
            raise ScenarioError(f"the street's clock refused {action.action}: {exc}") from None
        update: dict[str, Any] = {"wall": wall, "street": target or now, "seq": self.state.seq + 1}
        if action.action in ("pause", "resume"):
            update["paused"] = action.action == "pause"
        if action.speed is not None:
            update["speed"] = action.speed
        new = newest([self.state.model_copy(update=update)])
        assert new is not None
        self.state = new
        return self.clock()

    def close(self) -> None:
        pass


def _run(street: ClockedStreet, scenario: dict[str, Any]) -> tuple[Run, list[RunEvent]]:
    events: list[RunEvent] = []
    sc = Scenario.model_validate({"name": "clocked", **scenario})
    run = Run(sc, street, DevicePublishers(Connection()), sink=events.append)
    run.execute()
    return run, events


def test_a_run_keeps_its_offsets_and_deadlines_in_street_seconds() -> None:
    """At 3,600x an hour of street time passes in a wall second: the steps' offsets and the
    pause are street seconds, and so is the deadline the expectation is judged by."""
    street = ClockedStreet(state(wall=datetime.now(UTC), speed=3600.0))
    run, events = _run(
        street,
        {
            "steps": [
                {"id": "first", "at": 600, "wait": 0},
                {"id": "paused", "wait": 1200},
                {"id": "wall", "clock": "wall", "wait": 0.05},
            ],
            "expect": [
                {"after": "paused", "events": {"device": "gate-south", "at_most": 0, "within": 300}}
            ],
        },
    )
    assert not run.errors
    started = [e for e in events if isinstance(e, StepStarted)]
    assert [e.label for e in started] == ["first", "paused", "wall"]
    assert started[0].elapsed_s >= 600 and started[1].elapsed_s >= 600
    assert run.started is not None
    assert run.started.since(run.step_times["paused"], "street") >= 1800
    # "At most 0 events" is decided at its deadline: 300 street seconds after the pause.
    (verdict,) = run.verdicts
    assert verdict.passed is True and verdict.elapsed_s >= 300


def test_clock_steps_set_the_speed_pause_and_resume_and_a_refusal_fails_the_step() -> None:
    street = ClockedStreet(state(wall=datetime.now(UTC), speed=1.0))
    run, events = _run(
        street,
        {
            "steps": [
                {"clock": {"action": "speed", "speed": 3600}},
                {"id": "an-hour-later", "at": 3600, "wait": 0},
                {"clock": {"action": "pause"}},
                {"clock": {"action": "resume"}},
                {"clock": {"action": "resume"}},  # not paused: refused
                {"id": "never", "wait": 0},
            ],
        },
    )
    sets = [e for e in events if isinstance(e, ClockSet)]
    assert [(e.action, e.speed, e.paused) for e in sets] == [
        ("speed", "3600x", False),
        ("pause", "3600x", True),
        ("resume", "3600x", False),
    ]
    assert "an-hour-later" in run.step_times and "never" not in run.step_times
    (failed,) = [e for e in events if isinstance(e, StepFailed)]
    assert failed.error == "the street's clock refused resume: the street's clock is not paused"
    assert run.errors == [failed.error] and not run.ok


def test_a_run_that_paused_the_clock_refuses_street_waits_and_resumes_it_at_its_end() -> None:
    street = ClockedStreet(state(wall=datetime.now(UTC), speed=3600.0))
    run, events = _run(
        street,
        {
            "steps": [
                {"clock": {"action": "pause"}},
                {"id": "frozen", "wait": 5},  # street seconds: they would never pass
                {"id": "never", "wait": 0},
            ],
        },
    )
    (failed,) = [e for e in events if isinstance(e, StepFailed)]
    assert "paused the street's clock" in failed.error and "clock: wall" in failed.error
    assert "never" not in run.step_times and not run.ok
    # The drill leaves the clock as it found it: running.
    assert street.state.paused is False and run.paused_clock is False


def test_a_jump_step_ends_once_the_street_has_arrived() -> None:
    street = ClockedStreet(state(wall=datetime.now(UTC), speed=1.0))
    run, events = _run(
        street,
        {"steps": [{"id": "jump", "clock": {"action": "jump", "at": "07:30"}}]},
    )
    assert not run.errors, run.errors
    # 07:30 had just passed: the next one is a day later (Chongqing time).
    assert run.step_times["jump"].street >= STREET + timedelta(days=1)
    (jumped,) = [e for e in events if isinstance(e, ClockSet)]
    assert jumped.street >= STREET + timedelta(days=1)


def test_the_step_and_expectation_clock_fields_validate() -> None:
    sc = Scenario.model_validate(
        {
            "name": "x",
            "steps": [
                {"clock": "wall", "wait": 1},
                {"clock": {"action": "jump", "at": "07:30"}},
                {
                    "id": "c",
                    "clock": "wall",
                    "command": {"device": "d", "name": "n", "expect": "succeeded"},
                },
            ],
            "expect": [{"clock": "wall", "alarm": {"device": "d", "rule": "r"}}],
        }
    )
    assert [s.action for s in sc.steps] == ["wait", "clock", "command"]
    assert [s.timing for s in sc.steps] == ["wall", "street", "wall"]
    assert sc.expect[0].clock == "wall"
    (command,) = implicit(sc)
    assert command.clock == "wall" and "of wall time" in describe(command)
    with pytest.raises(ValueError, match="exactly one of"):
        Scenario.model_validate({"name": "x", "steps": [{"clock": "street"}]})
    with pytest.raises(ValueError, match="exactly one of"):
        Scenario.model_validate({"name": "x", "steps": [{"clock": {"action": "pause"}, "wait": 1}]})
    with pytest.raises(ValueError):
        Scenario.model_validate({"name": "x", "steps": [{"clock": {"action": "speed"}}]})
