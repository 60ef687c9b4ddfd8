"""Expectations: their wording, their verdicts, and one look at the street for each kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.alarms import compare
from contracts.vocabulary import FINAL_COMMAND_STATUSES, AlarmStatus
from scenarios.model import (
    ExpectAlarm,
    Expectation,
    ExpectCommand,
    ExpectDevices,
    ExpectEvents,
    ExpectShare,
    ExpectTwin,
    Scenario,
)
from scenarios.port import AlarmSeen, EventQuery, StreetPort, count_events, event_rows

SHARE_CAP = 5000  # events read for a share expectation, at most


@dataclass
class Verdict:
    """The outcome of one expectation."""

    name: str
    expected: str
    passed: bool | None = None  # None: still open
    seen: str = "nothing yet"
    elapsed_s: float = 0.0

    @property
    def message(self) -> str:
        return f"expected {self.expected}; seen {self.seen}"


# One look at the street: (satisfied, definitely failed, what it saw).
Look = tuple[bool, bool, str]
Probe = Callable[[], Look]


def describe(e: Expectation) -> str:
    """An expectation in words, as the verdicts and the list of shipped scenarios show it."""
    c = e.check
    # Deadlines are street seconds unless said otherwise (scenarios/model.py).
    wall = " of wall time" if e.clock == "wall" else ""
    after = f"{wall} after step {e.after!r}" if e.after else wall
    if isinstance(c, ExpectAlarm):
        return f"alarm {c.rule!r} {c.state} on {c.device} within {c.within:g} s{after}"
    if isinstance(c, ExpectTwin):
        return f"{c.device}.{c.field} {c.op} {c.value!r} within {c.within:g} s{after}"
    if isinstance(c, ExpectEvents):
        matching = f"{c.channel} matching {_event_filter_text(c)}"
        return f"{_bounds(c.at_least, c.at_most)} {matching} within {c.within:g} s{after}"
    if isinstance(c, ExpectShare):
        where = f" {c.where}" if c.where else ""
        return (
            f"at least {c.at_least:.0%} of {c.type}{where} events with {c.field} {c.op} "
            f"{c.value!r} (of at least {c.min_count}) within {c.within:g} s{after}"
        )
    if isinstance(c, ExpectDevices):
        kind = f" {c.kind}" if c.kind else ""
        test = f"{c.field} {c.op} {c.value!r}"
        bounds = _bounds(c.at_least, c.at_most)
        return f"{bounds}{kind} devices with {test} within {c.within:g} s{wall}"
    statuses = c.status if isinstance(c.status, list) else [c.status]
    return f"command of step {c.step!r} ends {' or '.join(statuses)} within {c.within:g} s{after}"


def _bounds(at_least: int | None, at_most: int | None) -> str:
    parts = [
        *([f"at least {at_least}"] if at_least is not None else []),
        *([f"at most {at_most}"] if at_most is not None else []),
    ]
    return " and ".join(parts)


def _event_filter_text(c: ExpectEvents) -> str:
    parts = [
        f"{k}={v}"
        for k, v in (
            ("device", c.device),
            ("kind", c.kind),
            ("type", c.type),
            ("injected", c.injected),
        )
        if v is not None
    ]
    if c.this_run:
        parts.append("run_id=<this run>")
    return "{" + ", ".join(parts) + "}"


def implicit(scenario: Scenario) -> list[Expectation]:
    """Command steps with `expect` become command expectations after the step."""
    out = []
    for s in scenario.steps:
        if s.command is not None and s.command.expect is not None:
            assert s.id is not None
            out.append(
                Expectation(
                    name=f"command {s.command.name} on {s.command.device}",
                    after=s.id,
                    clock=s.timing,
                    command=ExpectCommand(
                        step=s.id, status=s.command.expect, within=s.command.within
                    ),
                )
            )
    return out


def waits_for_deadline(e: Expectation) -> bool:
    """With an upper bound on a count, the count is only final at the deadline."""
    return isinstance(e.check, ExpectEvents) and e.check.at_most is not None


def dig(obj: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted path in JSON, and whether it is there."""
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


# -- one look per kind of expectation ------------------------------------------------------------
def look_share(street: StreetPort, c: ExpectShare, since: datetime) -> Look:
    query = EventQuery(device_id=c.device, kind=c.kind, type=c.type, since=since)
    rows = event_rows(street, query, cap=SHARE_CAP)
    rows = [r for r in rows if all(r["data"].get(k) == v for k, v in c.where.items())]
    hits = 0
    for r in rows:
        found, value = dig(r["data"], c.field)
        hits += found and compare(value, c.op, c.value)
    n = len(rows)
    share = hits / n if n else 0.0
    return n >= c.min_count and share >= c.at_least, False, f"{hits} of {n} ({share:.0%})"


def look_devices(street: StreetPort, c: ExpectDevices) -> Look:
    twins = street.devices(c.kind)
    n = 0
    for twin in twins:
        found, value = dig(twin, c.field)
        n += found and compare(value, c.op, c.value)
    ok = (c.at_least is None or n >= c.at_least) and (c.at_most is None or n <= c.at_most)
    return ok, False, f"{n} of {len(twins)} devices"


def look_alarm(street: StreetPort, c: ExpectAlarm, before: dict[int, AlarmSeen]) -> Look:
    """`before`: the alarms of this rule on the device when the run started, by id."""
    rows = street.alarms(c.device, c.rule)
    for a in rows:
        old = before.get(a.id)
        if c.state == "raised" and (old is None or a.occurrences > old.occurrences):
            how = "raised" if old is None else f"occurrence #{a.occurrences} of an open one"
            return True, False, f"alarm #{a.id} {how} (now {a.status})"
        if (
            c.state == "cleared"
            and a.status == AlarmStatus.CLEARED
            and (old is None or old.status != AlarmStatus.CLEARED)
        ):
            return True, False, f"alarm #{a.id} cleared ({a.clear_reason})"
    opened = [f"#{a.id} {a.status}" for a in rows if a.status != AlarmStatus.CLEARED]
    if c.state == "raised":
        return False, False, f"no new {c.rule!r} alarm on {c.device} (open: {opened or 'none'})"
    return False, False, f"no {c.rule!r} alarm cleared on {c.device} (open: {opened or 'none'})"


def look_twin(street: StreetPort, c: ExpectTwin) -> Look:
    found, value = dig(street.device(c.device), c.field)
    if not found:
        return False, False, f"{c.field} absent from the twin"
    return compare(value, c.op, c.value), False, f"{c.field} = {value!r}"


def look_events(street: StreetPort, c: ExpectEvents, run_id: str) -> Look:
    query = EventQuery(
        device_id=c.device,
        kind=c.kind,
        type=c.type,
        channel=c.channel,
        injected=c.injected,
        run_id=run_id if c.this_run else None,
    )
    cap = max(c.at_least or 0, c.at_most or 0)
    n = count_events(street, query, cap)
    ok = (c.at_least is None or n >= c.at_least) and (c.at_most is None or n <= c.at_most)
    # Over the upper bound is final now (nothing is ever unstored).
    failed = c.at_most is not None and n > c.at_most
    return ok, failed, f"{n} matching"


def look_command(street: StreetPort, c: ExpectCommand, command_id: str | None) -> Look:
    if command_id is None:
        return False, False, "the command was not sent"
    row = street.command(command_id)
    wanted = c.status if isinstance(c.status, list) else [c.status]
    seen = f"command {command_id} {row.status}" + (f" ({row.reason})" if row.reason else "")
    return (
        row.status in wanted,
        row.status in FINAL_COMMAND_STATUSES and row.status not in wanted,
        seen,
    )
