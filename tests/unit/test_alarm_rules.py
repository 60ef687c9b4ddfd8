"""Pure rule evaluation (backend/alarms/rules.py): each rule shape, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.alarms.rules import (
    Clear,
    Forget,
    Memory,
    Observed,
    Occur,
    Raise,
    Remember,
    acts_on,
    burst_window,
    offline_too_long,
    on_availability,
    on_message,
    on_time,
    watches_time,
)
from contracts.alarms import BurstRule, DeadlineRule, EventRule, TelemetryRule
from contracts.vocabulary import Severity

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
OPEN = Memory(open_last_at=T0)
NONE_OPEN = Memory()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(type_: str, data: dict[str, Any] | None = None, s: float = 0.0) -> Observed:
    return Observed("dev-1", "test-kind", "events", type_, at(s), data or {})


def telemetry(data: dict[str, Any], s: float = 0.0) -> Observed:
    return Observed("dev-1", "test-kind", "telemetry", "telemetry", at(s), data)


# -- event rules --------------------------------------------------------------------------------
FAULT = EventRule(
    "camera-fault",
    Severity.MINOR,
    where={"camera": ("left", "right")},
    clear_on=("camera-recovered",),
    clear_after_s=600,
)


def test_event_rule_watches_its_own_id_as_event_type_unless_told_otherwise() -> None:
    assert FAULT.event_type == "camera-fault"
    assert (
        EventRule("fault", Severity.MINOR, event_type="camera-fault").event_type == "camera-fault"
    )


def test_event_rule_raises_then_counts_occurrences_and_ignores_non_matching_data() -> None:
    it = event("camera-fault", {"camera": "left"})
    assert on_message(FAULT, it, NONE_OPEN) == [Raise(it.ts, {"camera": "left"})]
    assert on_message(FAULT, it, OPEN) == [Occur(it.ts, {"camera": "left"})]
    assert on_message(FAULT, event("camera-fault", {"camera": "rear"}), NONE_OPEN) == []
    assert on_message(FAULT, event("entry-granted"), OPEN) == []


def test_event_rule_clears_on_its_end_event_or_a_quiet_period_only_when_open() -> None:
    assert on_message(FAULT, event("camera-recovered"), OPEN) == [
        Clear("camera-recovered received")
    ]
    assert on_message(FAULT, event("camera-recovered"), NONE_OPEN) == []
    assert on_time(FAULT, at(601), OPEN) == [Clear("quiet period")]
    assert on_time(FAULT, at(600), OPEN) == []  # not yet: strictly longer than the period
    assert on_time(FAULT, at(10_000), NONE_OPEN) == []


def test_rules_act_only_on_their_channel_and_types() -> None:
    assert acts_on(FAULT, "events", "camera-fault") and acts_on(FAULT, "events", "camera-recovered")
    assert not acts_on(FAULT, "events", "entry-granted")
    assert not acts_on(FAULT, "telemetry", "camera-fault")
    assert acts_on(TOO_WARM, "telemetry", "telemetry") and not acts_on(TOO_WARM, "events", "x")
    assert watches_time(FAULT) and watches_time(DENIALS) and watches_time(OVERDUE)
    assert not watches_time(TOO_WARM) and on_time(TOO_WARM, at(10_000), OPEN) == []


# -- burst rules --------------------------------------------------------------------------------
DENIALS = BurstRule(
    "repeated-denials",
    Severity.MAJOR,
    event_type="entry-denied",
    count=3,
    window_s=120,
    where={"reason": ("unknown-face", "blocklisted")},
)


def test_burst_rule_counts_matching_events_in_its_window() -> None:
    it = event("entry-denied", {"reason": "unknown-face"}, s=300)
    assert burst_window(DENIALS, it) == (at(180), at(300))
    two = [{"reason": "unknown-face"}, {"reason": "blocklisted"}]
    other = [{"reason": "expired-card"}]
    assert on_message(DENIALS, it, NONE_OPEN, two + other) == []
    three = [*two, {"reason": "unknown-face"}]
    assert on_message(DENIALS, it, NONE_OPEN, three) == [Raise(it.ts, {"count": 3})]
    assert on_message(DENIALS, it, OPEN, three) == [Occur(it.ts, {"count": 3})]


def test_burst_rule_needs_no_window_for_messages_that_cannot_raise_it_and_quiets_down() -> None:
    assert burst_window(DENIALS, event("entry-denied", {"reason": "expired-card"})) is None
    assert burst_window(DENIALS, event("entry-granted")) is None
    assert on_time(DENIALS, at(121), OPEN) == [Clear("quiet period")]
    assert on_time(DENIALS, at(120), OPEN) == []


# -- telemetry rules ----------------------------------------------------------------------------
TOO_WARM = TelemetryRule(
    "cold-chain-high", Severity.CRITICAL, field="temperature_c", op=">", value=8.0, for_s=300
)
OVER_CAPACITY = TelemetryRule(
    "crowded", Severity.WARNING, field="occupancy", op=">", value="field:capacity"
)


def test_telemetry_rule_remembers_since_when_and_raises_once_held_long_enough() -> None:
    first = telemetry({"temperature_c": 11.0})
    assert on_message(TOO_WARM, first, NONE_OPEN) == [Remember("", first.ts, None)]
    held = Memory(state={"": (first.ts, None)})
    soon = telemetry({"temperature_c": 11.5}, s=299)
    assert on_message(TOO_WARM, soon, held) == []
    later = telemetry({"temperature_c": 12.0}, s=300)
    details = {"temperature_c": 12.0, "since": first.ts.isoformat()}
    assert on_message(TOO_WARM, later, held) == [Raise(later.ts, details)]
    open_and_held = Memory(open_last_at=later.ts, state={"": (first.ts, None)})
    assert on_message(TOO_WARM, later, open_and_held) == [Occur(later.ts, details)]


def test_telemetry_rule_forgets_and_clears_when_the_condition_ends() -> None:
    cool = telemetry({"temperature_c": 5.0})
    held_open = Memory(open_last_at=T0, state={"": (T0, None)})
    assert on_message(TOO_WARM, cool, held_open) == [Forget(""), Clear("condition ended")]
    assert on_message(TOO_WARM, cool, NONE_OPEN) == []
    missing = telemetry({"humidity_pct": 40.0})
    assert on_message(TOO_WARM, missing, Memory(state={"": (T0, None)})) == [Forget("")]


def test_telemetry_rule_compares_with_another_field_and_raises_at_once_without_for_s() -> None:
    crowded = telemetry({"occupancy": 31, "capacity": 30})
    assert on_message(OVER_CAPACITY, crowded, NONE_OPEN) == [
        Remember("", crowded.ts, None),
        Raise(crowded.ts, {"occupancy": 31, "since": crowded.ts.isoformat()}),
    ]
    assert on_message(OVER_CAPACITY, telemetry({"occupancy": 30, "capacity": 30}), OPEN) == [
        Clear("condition ended")
    ]


# -- deadline rules -----------------------------------------------------------------------------
OVERDUE = DeadlineRule(
    "request-overdue",
    Severity.MAJOR,
    start="request-created",
    end=("request-resolved",),
    key="request_id",
    due_field="due",
)


def test_deadline_rule_remembers_open_deadlines_and_forgets_closed_ones() -> None:
    due = at(3600)
    created = event("request-created", {"request_id": "r-1", "due": due.isoformat()})
    assert on_message(OVERDUE, created, NONE_OPEN) == [Remember("r-1", created.ts, due)]
    naive = event("request-created", {"request_id": 7, "due": "2026-11-22T09:00:00"})
    assert on_message(OVERDUE, naive, NONE_OPEN) == [Remember("7", naive.ts, due)]
    assert on_message(OVERDUE, event("request-created", {"request_id": "r-2"}), NONE_OPEN) == []
    bad_due = event("request-created", {"request_id": "r-3", "due": "tomorrow"})
    assert on_message(OVERDUE, bad_due, NONE_OPEN) == []
    resolved = event("request-resolved", {"request_id": "r-1"})
    assert on_message(OVERDUE, resolved, NONE_OPEN) == [Forget("r-1")]
    assert on_message(OVERDUE, event("request-resolved"), NONE_OPEN) == []


def test_deadline_rule_raises_while_anything_is_overdue_and_clears_when_nothing_is() -> None:
    two = Memory(state={"r-1": (T0, at(60)), "r-2": (T0, at(600))})
    assert on_time(OVERDUE, at(30), two) == []
    assert on_time(OVERDUE, at(61), two) == [Raise(at(61), {"overdue": 1})]
    assert on_time(OVERDUE, at(601), two) == [Raise(at(601), {"overdue": 2})]
    two_open = Memory(open_last_at=at(61), state=two.state)
    assert on_time(OVERDUE, at(601), two_open) == [Occur(at(601), {"overdue": 2})]
    assert on_time(OVERDUE, at(30), two_open) == [Clear("nothing overdue")]
    assert on_time(OVERDUE, at(30), NONE_OPEN) == []


# -- offline ------------------------------------------------------------------------------------
def test_offline_rule_raises_when_swept_and_clears_when_back_online() -> None:
    assert offline_too_long("last-will", at(400), NONE_OPEN) == Raise(
        at(400), {"reason": "last-will"}
    )
    assert offline_too_long("silent", at(401), OPEN) == Occur(at(401), {"reason": "silent"})
    assert on_availability("online", OPEN) == [Clear("device back online")]
    assert on_availability("online", NONE_OPEN) == []
    assert on_availability("offline", OPEN) == []
