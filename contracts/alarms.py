"""Alarm rules as data: each kind declares its rules next to its payloads; the backend evaluates.

Four shapes cover the street: an event that raises (optionally cleared by another event or by a
quiet period), a burst of events in a window, a telemetry condition that holds for a while, and a
deadline opened by one event and closed by another (same key). Offline-too-long is generic.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from contracts.text import EMPTY, Text
from contracts.vocabulary import Severity

Op = Literal["<", "<=", ">", ">=", "==", "!="]


@dataclass(frozen=True)
class EventRule:
    """Raise on an event of `event_type` (whose data matches `where`, if given); the event type
    is the rule's own id unless given."""

    rule: str
    severity: Severity
    title: Text = EMPTY
    _: KW_ONLY
    event_type: str = ""
    where: dict[str, Any] = field(default_factory=dict)
    clear_on: tuple[str, ...] = ()  # event types that end the condition
    clear_after_s: float | None = None  # or a quiet period with no new occurrence

    def __post_init__(self) -> None:
        if not self.event_type:
            object.__setattr__(self, "event_type", self.rule)  # frozen: set once, here


@dataclass(frozen=True)
class BurstRule:
    """Raise when `count` events of `event_type` arrive within `window_s` (device time)."""

    rule: str
    severity: Severity
    title: Text = EMPTY
    _: KW_ONLY
    event_type: str
    count: int
    window_s: float
    where: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TelemetryRule:
    """Raise when telemetry `field` `op` `value` has held for `for_s` seconds; clear when not.

    `value` may name another telemetry field with "field:NAME" (e.g. occupancy > capacity)."""

    rule: str
    severity: Severity
    title: Text = EMPTY
    _: KW_ONLY
    field: str
    op: Op
    value: float | str | bool
    for_s: float = 0.0


@dataclass(frozen=True)
class DeadlineRule:
    """An event `start` with `key` and an ISO time in `due_field` opens a deadline; any of `end`
    with the same key closes it. Past the due time, still open → alarm (cleared when closed)."""

    rule: str
    severity: Severity
    title: Text = EMPTY
    _: KW_ONLY
    start: str
    end: tuple[str, ...]
    key: str
    due_field: str


AlarmRule = EventRule | BurstRule | TelemetryRule | DeadlineRule

# Generic: every kind, evaluated on availability.
OFFLINE_RULE = "device-offline"
OFFLINE_SEVERITY = Severity.MAJOR


def compare(left: Any, op: Op, right: Any) -> bool:
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
        if op == "==":
            return bool(left == right)
        return bool(left != right)
    except TypeError:
        return False


def matches(data: dict[str, Any], where: dict[str, Any]) -> bool:
    """`where` values may be a single value or a tuple/list of accepted values."""
    for key, expected in where.items():
        value = data.get(key)
        if isinstance(expected, (tuple, list)):
            if value not in expected:
                return False
        elif value != expected:
            return False
    return True
