"""Pure rule evaluation: a rule, an observation and what the rule remembers → decisions.

No database here. Each function gets what the rule remembers about one device (`Memory`: the
open alarm's last occurrence, if one is open, and the rule's state rows) and answers with
decisions; backend/alarms/batch.py and backend/alarms/engine.py persist them through
backend/alarms/lifecycle.py. The rule shapes are declared in contracts/alarms.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.alarms import (
    AlarmRule,
    BurstRule,
    DeadlineRule,
    EventRule,
    TelemetryRule,
    compare,
    matches,
)
from contracts.catalogue import load_builtin_kinds
from contracts.vocabulary import Availability

# A rule's state rows for one device: key -> (since, due_at).
StateRows = Mapping[str, tuple[datetime, datetime | None]]


@dataclass(frozen=True)
class Observed:
    """A newly stored envelope, as the rules see it."""

    device_id: str
    kind: str
    channel: str
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Memory:
    """What one rule remembers about one device."""

    open_last_at: datetime | None = None  # the open alarm's latest occurrence; None: none open
    state: StateRows = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.open_last_at is not None


# -- decisions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raise:
    """Open a new alarm (none is open)."""

    at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class Occur:
    """One more occurrence on the open alarm; empty `details` keep the alarm's previous ones."""

    at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class Clear:
    """End the open alarm."""

    reason: str


@dataclass(frozen=True)
class Remember:
    """Keep a state row (since when a condition holds, or an open deadline)."""

    key: str
    since: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class Forget:
    """Drop a state row."""

    key: str


Decision = Raise | Occur | Clear | Remember | Forget


def _fire(memory: Memory, at: datetime, details: dict[str, Any]) -> Raise | Occur:
    """The condition is met: a new alarm, or one more occurrence of the open one (no flood)."""
    return Occur(at, details) if memory.is_open else Raise(at, details)


def _end(memory: Memory, reason: str) -> list[Decision]:
    return [Clear(reason)] if memory.is_open else []


# -- which rules a message concerns -------------------------------------------------------------
def rules_for(kind: str) -> tuple[AlarmRule, ...]:
    spec = load_builtin_kinds().get(kind)
    return spec.alarms if spec else ()


def acts_on(rule: AlarmRule, channel: str, type_: str) -> bool:
    """Whether `on_message` can decide anything for a message of this channel and type."""
    if isinstance(rule, TelemetryRule):
        return channel == "telemetry"
    if channel != "events":
        return False
    if isinstance(rule, EventRule):
        return type_ == rule.event_type or type_ in rule.clear_on
    if isinstance(rule, BurstRule):
        return type_ == rule.event_type
    return type_ == rule.start or type_ in rule.end


_RELEVANT: dict[tuple[str, str, str], tuple[tuple[AlarmRule, ...], tuple[AlarmRule, ...]]] = {}


def rules_acting_on(kind: str, channel: str, type_: str) -> tuple[AlarmRule, ...]:
    """The kind's rules that can act on this message, in declaration order: most messages
    (telemetry aside) concern none, and trying every rule on every message showed in profiles.
    Cached per kind, channel and type, and checked against the kind's current rules (kinds can
    be registered at run time)."""
    rules = rules_for(kind)
    cached = _RELEVANT.get((kind, channel, type_))
    if cached is not None and cached[0] is rules:
        return cached[1]
    relevant = tuple(r for r in rules if acts_on(r, channel, type_))
    if len(_RELEVANT) < 10_000:  # types are validated, but keep the cache bounded regardless
        _RELEVANT[(kind, channel, type_)] = (rules, relevant)
    return relevant


def keeps_state(rule: AlarmRule) -> bool:
    """Rules that remember something between messages (rule_state rows)."""
    return isinstance(rule, TelemetryRule | DeadlineRule)


# -- per message --------------------------------------------------------------------------------
def burst_window(rule: BurstRule, it: Observed) -> tuple[datetime, datetime] | None:
    """The device-time window (exclusive start, inclusive end) whose events a burst rule must
    count for this message, or None when the message cannot raise it."""
    if it.channel != "events" or it.type != rule.event_type or not matches(it.data, rule.where):
        return None
    return it.ts - timedelta(seconds=rule.window_s), it.ts


def on_message(
    rule: AlarmRule,
    it: Observed,
    memory: Memory,
    window: Iterable[dict[str, Any]] = (),
) -> list[Decision]:
    """What a rule decides on one message. `window` is, for a burst rule, the data of the
    device's events of that type in `burst_window` (this message's own event included)."""
    if isinstance(rule, TelemetryRule):
        return _telemetry(rule, it, memory) if it.channel == "telemetry" else []
    if it.channel != "events":
        return []
    if isinstance(rule, EventRule):
        if it.type == rule.event_type and matches(it.data, rule.where):
            return [_fire(memory, it.ts, it.data)]
        if it.type in rule.clear_on:
            return _end(memory, f"{it.type} received")
        return []
    if isinstance(rule, BurstRule):
        if burst_window(rule, it) is None:
            return []
        n = sum(1 for data in window if matches(data, rule.where))
        return [_fire(memory, it.ts, {"count": n})] if n >= rule.count else []
    return _deadline(rule, it)


def _telemetry(rule: TelemetryRule, it: Observed, memory: Memory) -> list[Decision]:
    value = it.data.get(rule.field)
    rhs: Any = rule.value
    if isinstance(rhs, str) and rhs.startswith("field:"):
        rhs = it.data.get(rhs.removeprefix("field:"))
    state = memory.state.get("")
    if value is not None and compare(value, rule.op, rhs):
        out: list[Decision] = []
        since = state[0] if state else it.ts
        if state is None:
            out.append(Remember("", it.ts, None))
        if (it.ts - since).total_seconds() >= rule.for_s:
            out.append(_fire(memory, it.ts, {rule.field: value, "since": since.isoformat()}))
        return out
    forget: list[Decision] = [Forget("")] if state is not None else []
    return forget + _end(memory, "condition ended")


def _parse_due(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        due = datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=UTC)


def _deadline(rule: DeadlineRule, it: Observed) -> list[Decision]:
    key = it.data.get(rule.key)
    if key is None:
        return []
    if it.type == rule.start:
        due = _parse_due(it.data.get(rule.due_field))
        return [Remember(str(key), it.ts, due)] if due is not None else []
    if it.type in rule.end:
        return [Forget(str(key))]
    return []


# -- as time passes -----------------------------------------------------------------------------
def watches_time(rule: AlarmRule) -> bool:
    """Rules `on_time` can decide anything for (telemetry rules wait for the next message)."""
    return not isinstance(rule, TelemetryRule)


def on_time(rule: AlarmRule, now: datetime, memory: Memory) -> list[Decision]:
    """What a rule decides when the device's clock reads `now`: quiet periods end alarms,
    deadlines fall due."""
    if isinstance(rule, EventRule | BurstRule):
        quiet = rule.clear_after_s if isinstance(rule, EventRule) else rule.window_s
        last = memory.open_last_at
        if quiet is not None and last is not None and (now - last).total_seconds() > quiet:
            return [Clear("quiet period")]
        return []
    if isinstance(rule, DeadlineRule):
        overdue = sum(
            1 for _since, due_at in memory.state.values() if due_at is not None and due_at < now
        )
        if overdue:
            return [_fire(memory, now, {"overdue": overdue})]
        return _end(memory, "nothing overdue")
    return []


# -- the generic offline rule -------------------------------------------------------------------
def on_availability(availability: str, memory: Memory) -> list[Decision]:
    """A device back online ends its offline alarm."""
    if availability == Availability.ONLINE:
        return _end(memory, "device back online")
    return []


def offline_too_long(reason: str | None, now: datetime, memory: Memory) -> Decision:
    """A device offline for longer than allowed (the sweep picks which ones)."""
    return _fire(memory, now, {"reason": reason})
