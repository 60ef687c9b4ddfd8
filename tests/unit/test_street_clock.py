"""Unit tests of the backend's street clock: following announcements, steering (no broker: the
control's publish is a function of the test), street time at receipt in ingest, and clock skew
told apart from a backlog."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from backend.ingest.classify import Incoming, Rules, classify
from backend.ingest.plan import plan_batch
from backend.ingest.skew import SkewWatch
from backend.street_clock import NO_SIMULATOR, ClockControlFailed, StreetClock
from contracts.clock import (
    CLOCK_ACK_TOPIC,
    CLOCK_CONTROL_TOPIC,
    ClockAck,
    ClockAction,
    ClockControl,
    ClockState,
    clock_topic,
)
from contracts.validation import ContractError
from contracts.vocabulary import STREET_TZ
from tests.unit.test_ingest_plan import GATE, RULES, message

WALL = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # 10:00 in Chongqing
STREET = datetime(2026, 5, 3, 23, 30, tzinfo=UTC)  # 07:30 in Chongqing


def state(sim: str = "sim-a", seq: int = 1, **kw: Any) -> ClockState:
    fields: dict[str, Any] = {
        "simulator": sim,
        "seq": seq,
        "wall": WALL,
        "street": STREET,
        "speed": 60.0,
        "seed": 7,
        "start": STREET - timedelta(hours=1),
        **kw,
    }
    return ClockState(**fields)


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = WALL

    def __call__(self) -> datetime:
        return self.now


def announce(clock: StreetClock, s: ClockState | None, sim: str = "sim-a") -> None:
    clock.on_message(clock_topic(sim), s.model_dump_json().encode() if s else b"")


def test_without_a_simulator_street_time_is_wall_time() -> None:
    wall = Wall()
    clock = StreetClock(wall)
    assert clock.now() == WALL and clock.state() is None
    view = clock.view()
    assert (view.source, view.now, view.speed, view.simulators) == ("wall", WALL, 1.0, [])


def test_it_follows_the_newest_announcement_and_drops_a_simulator_that_is_gone() -> None:
    wall = Wall()
    clock = StreetClock(wall)
    announce(clock, state())
    wall.now = WALL + timedelta(seconds=10)
    assert clock.now() == STREET + timedelta(minutes=10)  # 60x
    view = clock.view()
    assert (view.source, view.speed, view.seed, view.simulators) == (
        "simulator",
        60.0,
        7,
        ["sim-a"],
    )
    assert view.day.isoformat() == "2026-05-04"  # 07:40 in Chongqing
    # An older announcement (lower seq, earlier anchor) changes nothing.
    announce(clock, state(seq=0, wall=WALL - timedelta(hours=1), street=STREET))
    assert clock.now() == STREET + timedelta(minutes=10)
    announce(clock, state(seq=2, wall=wall.now, street=STREET + timedelta(minutes=10), paused=True))
    wall.now += timedelta(seconds=30)
    assert clock.now() == STREET + timedelta(minutes=10)  # paused
    announce(clock, None)  # the Last Will: an empty retained payload
    assert clock.now() == wall.now and clock.view().source == "wall"


def test_a_jump_breaks_continuous_street_time() -> None:
    wall = Wall()
    clock = StreetClock(wall)
    announce(clock, state())
    assert clock.continuous_since() == STREET  # a simulator appeared: street left wall time
    wall.now += timedelta(seconds=5)
    announce(clock, state(seq=2, wall=wall.now, street=clock.now(), speed=30.0))
    assert clock.continuous_since() == STREET  # a speed change keeps time continuous
    target = STREET + timedelta(hours=3)
    announce(clock, state(seq=3, wall=wall.now, street=clock.now(), jumping_to=target))
    wall.now += timedelta(seconds=2)
    announce(clock, state(seq=4, wall=wall.now, street=target, speed=30.0))
    assert clock.continuous_since() == target


def test_control_is_refused_without_a_simulator_and_by_the_contract_checks() -> None:
    clock = StreetClock(Wall())
    sent: list[tuple[str, bytes]] = []
    with pytest.raises(ClockControlFailed) as caught:
        clock.control(ClockAction(action="pause"), lambda t, p: sent.append((t, p)))
    assert (caught.value.status, caught.value.reason) == (409, NO_SIMULATOR)
    announce(clock, state(speed="max"))
    with pytest.raises(ClockControlFailed) as caught:
        clock.control(ClockAction(action="pause"), lambda t, p: sent.append((t, p)))
    assert caught.value.status == 409 and "max" in caught.value.reason
    assert sent == []


def test_control_waits_for_every_simulators_ack_or_times_out() -> None:
    wall = Wall()
    clock = StreetClock(wall)
    announce(clock, state("sim-a"), "sim-a")
    announce(clock, state("sim-b"), "sim-b")

    def both_answer(topic: str, payload: bytes) -> None:
        assert topic == CLOCK_CONTROL_TOPIC
        control = ClockControl.model_validate_json(payload)
        for sim in ("sim-a", "sim-b"):
            paused = state(sim, seq=2, paused=True)
            ack = ClockAck(id=control.id, simulator=sim, ok=True, clock=paused)
            clock.on_message(CLOCK_ACK_TOPIC, ack.model_dump_json().encode())

    change = clock.control(ClockAction(action="pause"), both_answer, timeout=5)
    assert [a.simulator for a in change.acks] == ["sim-a", "sim-b"]
    assert change.clock.paused is True  # the acks' states are followed at once

    def one_answers(_topic: str, payload: bytes) -> None:
        control = ClockControl.model_validate_json(payload)
        ack = ClockAck(id=control.id, simulator="sim-a", ok=True, clock=state("sim-a", seq=3))
        clock.on_message(CLOCK_ACK_TOPIC, ack.model_dump_json().encode())

    with pytest.raises(ClockControlFailed) as caught:
        clock.control(ClockAction(action="resume"), one_answers, timeout=0.2)
    assert caught.value.status == 504 and "sim-b" in caught.value.reason

    def refuses(_topic: str, payload: bytes) -> None:
        control = ClockControl.model_validate_json(payload)
        for sim in ("sim-a", "sim-b"):
            ack = ClockAck(id=control.id, simulator=sim, ok=False, reason="busy", clock=state(sim))
            clock.on_message(CLOCK_ACK_TOPIC, ack.model_dump_json().encode())

    with pytest.raises(ClockControlFailed) as caught:
        clock.control(ClockAction(action="speed", speed=10), refuses, timeout=5)
    assert caught.value.status == 409 and "busy" in caught.value.reason


def test_a_jump_to_a_time_of_day_is_resolved_once_by_the_backend() -> None:
    clock = StreetClock(Wall())
    announce(clock, state("sim-a"), "sim-a")
    sent: list[ClockControl] = []

    def answers(_topic: str, payload: bytes) -> None:
        control = ClockControl.model_validate_json(payload)
        sent.append(control)
        ack = ClockAck(id=control.id, simulator="sim-a", ok=True, clock=state(seq=2))
        clock.on_message(CLOCK_ACK_TOPIC, ack.model_dump_json().encode())

    clock.control(ClockAction(action="jump", at=time(7, 30)), answers, timeout=5)
    # Every simulator gets the same instant: the next 07:30 after the street's now (STREET).
    [control] = sent
    assert control.do.at is None and control.do.to is not None
    assert control.do.to > STREET and control.do.to - STREET <= timedelta(days=1)
    assert control.do.to.astimezone(STREET_TZ).time() == time(7, 30)


# -- ingest on street time -------------------------------------------------------------------
def at_street(item: Incoming, clock: ClockState | None) -> Incoming:
    return dataclasses.replace(item, clock=clock)


def test_the_twin_is_stamped_with_street_time_at_receipt() -> None:
    s = state(wall=WALL, street=STREET)
    item = at_street(message(1, ts=STREET, received_at=WALL + timedelta(seconds=1)), s)
    twin = plan_batch([item], RULES).twins[GATE]
    assert twin["last_seen"] == STREET + timedelta(seconds=60)


def test_refusal_allows_any_clock_of_the_street_but_not_garbage() -> None:
    strict = Rules(kinds=RULES.kinds, max_clock_skew_s=3600)
    s = state()
    # Street time hours from wall time, a backlog from the street's start: both fine.
    assert classify(at_street(message(1, ts=STREET, received_at=WALL), s), strict).envelope
    early = s.start + timedelta(minutes=1)
    assert classify(at_street(message(1, ts=early, received_at=WALL), s), strict).envelope
    with pytest.raises(ContractError, match="clock-skew"):
        classify(at_street(message(1, ts=WALL + timedelta(days=30), received_at=WALL), s), strict)
    with pytest.raises(ContractError, match="clock-skew"):
        classify(at_street(message(1, ts=s.start - timedelta(days=2), received_at=WALL), s), strict)


def test_a_clock_ahead_is_flagged_at_once_at_any_speed() -> None:
    watch = SkewWatch(flag_s=120)
    s = state()
    judged = watch.judge(GATE, STREET + timedelta(seconds=600), STREET, s)
    assert judged is not None and judged.skewed and judged.skew_s == 600.0
    on_time = watch.judge(GATE, STREET + timedelta(seconds=62), STREET + timedelta(seconds=60), s)
    assert on_time is not None and not on_time.skewed


def test_a_backlog_is_not_mistaken_for_a_late_clock_but_a_late_clock_is_flagged() -> None:
    s = state()
    watch = SkewWatch(flag_s=120)
    arrival = STREET + timedelta(hours=1)
    # A device back after a 30-minute outage resends its outbox: made a minute apart, arriving
    # together, each far behind street time.
    for i in range(30):
        ts = arrival - timedelta(minutes=30 - i)
        judged = watch.judge(GATE, ts, arrival + timedelta(seconds=i * 0.01), s)
        assert judged is None or not judged.skewed
    # A clock 600 s late: its live messages arrive at the pace they were made.
    late = SkewWatch(flag_s=120)
    verdicts = [
        late.judge(
            GATE, STREET + timedelta(seconds=60 * i - 600), STREET + timedelta(seconds=60 * i), s
        )
        for i in range(4)
    ]
    assert verdicts[0] is None and verdicts[1] is None  # not yet: it must persist
    assert verdicts[2] is not None and verdicts[2].skewed and verdicts[2].skew_s == -600.0


def test_at_max_nothing_is_judged() -> None:
    watch = SkewWatch(flag_s=120)
    assert watch.judge(GATE, STREET + timedelta(hours=1), STREET, state(speed="max")) is None


def test_a_simulator_on_wall_time_does_not_break_continuity() -> None:
    wall = Wall()
    clock = StreetClock(wall)
    announce(clock, state(street=WALL, speed=1.0))  # `--speed 1`, starting now
    assert clock.continuous_since() is None
    announce(clock, state(seq=2, street=WALL, speed="max"))
    wall.now += timedelta(seconds=1)
    announce(clock, state(seq=3, wall=wall.now, street=WALL + timedelta(hours=2), speed="max"))
    # At "max" the street moves on by announcements, hours at a time: silence is not judged.
    assert clock.continuous_since() == WALL + timedelta(hours=2)
    announce(clock, state(seq=4, wall=wall.now, street=WALL + timedelta(hours=2), speed=60.0))
    # Leaving "max" is a break: what was stamped at max lags; continuity starts again here.
    assert clock.continuous_since() == WALL + timedelta(hours=2)


def test_after_a_reconnect_states_stay_until_the_retained_ones_had_time_to_come() -> None:
    clock = StreetClock(Wall())
    announce(clock, state("sim-a"), "sim-a")
    announce(clock, state("sim-b"), "sim-b")
    clock.connected(first=False)
    announce(clock, state("sim-a"), "sim-a")  # its retained announcement, again
    assert sorted(clock.view().simulators) == ["sim-a", "sim-b"]  # street time did not fall back
    clock._drop_unconfirmed()  # what `subscribed` schedules RECONFIRM_S later
    assert clock.view().simulators == ["sim-a"]
