"""The alarm lifecycle in SQL: raise, occur again, acknowledge, comment, clear; who and when.

The one place that writes an alarm's status (contracts/vocabulary.py: active → acknowledged →
cleared) and its history notes. Rules (backend/alarms/rules.py) decide; ingest, the upkeep and
the API's routes all change alarms through these functions. Every time here is street time
(backend/street_clock.py): callers pass `now`, the street's time of the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backend.models import Alarm, AlarmNote, table
from contracts.vocabulary import AlarmStatus, NoteAction, Severity

SYSTEM = "system"
ALARM, NOTE = table(Alarm), table(AlarmNote)


class AlarmNotFound(LookupError):
    """No alarm with this id."""


class TransitionRefused(ValueError):
    """The alarm's status does not allow this step (the message says why)."""


@dataclass(frozen=True)
class AlarmChange:
    """Reported to the live stream after commit."""

    alarm_id: int
    rule: str
    device_id: str
    status: str
    severity: str
    by: str = SYSTEM


@dataclass
class OpenAlarm:
    """An open alarm, as rules and the lifecycle need it."""

    id: int
    rule: str
    device_id: str
    severity: str
    occurrences: int
    last_at: datetime
    details: dict[str, Any]


def open_key(rule: str, device_id: str) -> str:
    """Set while an alarm is open, NULL once cleared (unique: one open alarm per rule and
    device, also when replicas race)."""
    return f"{rule}|{device_id}"


OPEN_COLUMNS = (
    ALARM.c.id,
    ALARM.c.rule,
    ALARM.c.device_id,
    ALARM.c.severity,
    ALARM.c.occurrences,
    ALARM.c.last_at,
    ALARM.c.details,
    ALARM.c.open_key,
)
# Statements of the per-message paths, built once: building and cache-keying a Core statement
# per message cost more than executing it (profile in docs/benchmarks.md, section 1).
OPEN_BY_KEYS = select(*OPEN_COLUMNS).where(ALARM.c.open_key.in_(bindparam("keys", expanding=True)))
_OCCUR_AGAIN = (
    update(ALARM)
    .where(ALARM.c.id == bindparam("b_id"))
    .values(
        occurrences=bindparam("occurrences"),
        last_at=bindparam("last_at"),
        updated_at=bindparam("updated_at"),
        details=bindparam("details"),
    )
)


def open_alarm_of(row: Any) -> OpenAlarm:
    return OpenAlarm(
        row.id,
        row.rule,
        row.device_id,
        row.severity,
        row.occurrences,
        row.last_at,
        row.details or {},
    )


def find_open(conn: Connection, rule: str, device_id: str) -> OpenAlarm | None:
    row = conn.execute(OPEN_BY_KEYS, {"keys": [open_key(rule, device_id)]}).first()
    return open_alarm_of(row) if row is not None else None


def _note(
    conn: Connection, alarm_id: int, action: NoteAction, by: str, text: str | None, at: datetime
) -> None:
    conn.execute(insert(NOTE).values(alarm_id=alarm_id, action=action, author=by, text=text, at=at))


# -- by the rules -------------------------------------------------------------------------------
def raise_new(
    conn: Connection,
    *,
    rule: str,
    device_id: str,
    kind: str,
    severity: Severity,
    title: str,
    at: datetime,
    details: dict[str, Any] | None,
    now: datetime,
) -> AlarmChange | None:
    """Insert a new open alarm and its "raised" note; None if another writer opened it first."""
    try:
        with conn.begin_nested():  # a racing replica may have opened it first
            alarm_id = conn.execute(
                insert(ALARM).values(
                    rule=rule,
                    device_id=device_id,
                    kind=kind,
                    severity=severity,
                    title=title or rule,
                    status=AlarmStatus.ACTIVE,
                    open_key=open_key(rule, device_id),
                    occurrences=1,
                    raised_at=at,
                    last_at=at,
                    updated_at=now,
                    details=details or {},
                )
            ).inserted_primary_key
    except IntegrityError:
        return None
    assert alarm_id is not None
    _note(conn, alarm_id[0], NoteAction.RAISED, SYSTEM, None, now)
    return AlarmChange(alarm_id[0], rule, device_id, AlarmStatus.ACTIVE, severity)


def occur_again(alarm: OpenAlarm, at: datetime, details: dict[str, Any]) -> None:
    """Count one more occurrence on the open alarm, in memory: `write_occurrences` stores it
    (a condition that holds, such as a shelf out of stock, recurs with every message)."""
    alarm.occurrences += 1
    alarm.last_at = at
    alarm.details = details or alarm.details


def write_occurrences(conn: Connection, alarms: Sequence[OpenAlarm], now: datetime) -> None:
    """Store the occurrence counts of these alarms, one executemany."""
    if not alarms:
        return
    conn.execute(
        _OCCUR_AGAIN,
        [
            {
                "b_id": a.id,
                "occurrences": a.occurrences,
                "last_at": a.last_at,
                "updated_at": now,
                "details": a.details,
            }
            for a in alarms
        ],
    )


def clear(
    conn: Connection,
    alarm: OpenAlarm,
    *,
    by: str,
    reason: str,
    now: datetime,
    comment: str | None = None,
) -> AlarmChange:
    """End an open alarm (by a rule, or by an operator)."""
    conn.execute(
        update(ALARM)
        .where(ALARM.c.id == alarm.id)
        .values(
            status=AlarmStatus.CLEARED,
            open_key=None,
            cleared_by=by,
            cleared_at=now,
            clear_reason=reason,
            updated_at=now,
        )
    )
    _note(conn, alarm.id, NoteAction.CLEARED, by, comment or reason, now)
    return AlarmChange(
        alarm.id, alarm.rule, alarm.device_id, AlarmStatus.CLEARED, alarm.severity, by
    )


# -- by operators -------------------------------------------------------------------------------
def _load(conn: Connection, alarm_id: int) -> Any:
    row = conn.execute(select(ALARM).where(ALARM.c.id == alarm_id)).first()
    if row is None:
        raise AlarmNotFound(alarm_id)
    return row


def acknowledge(
    conn: Connection, alarm_id: int, *, by: str, now: datetime, comment: str | None = None
) -> AlarmChange:
    """An operator has seen an active alarm."""
    row = _load(conn, alarm_id)
    if row.status != AlarmStatus.ACTIVE:
        raise TransitionRefused(f"alarm is {row.status}; only active alarms are acknowledged")
    conn.execute(
        update(ALARM)
        .where(ALARM.c.id == alarm_id)
        .values(
            status=AlarmStatus.ACKNOWLEDGED, acknowledged_by=by, acknowledged_at=now, updated_at=now
        )
    )
    _note(conn, alarm_id, NoteAction.ACKNOWLEDGED, by, comment, now)
    return AlarmChange(
        alarm_id, row.rule, row.device_id, AlarmStatus.ACKNOWLEDGED, row.severity, by
    )


def clear_by_operator(
    conn: Connection, alarm_id: int, *, by: str, now: datetime, comment: str | None = None
) -> AlarmChange:
    """An operator ends an open (active or acknowledged) alarm."""
    row = _load(conn, alarm_id)
    if row.status == AlarmStatus.CLEARED:
        raise TransitionRefused("alarm is already cleared")
    return clear(conn, open_alarm_of(row), by=by, reason="operator", now=now, comment=comment)


def comment(conn: Connection, alarm_id: int, *, by: str, text: str, now: datetime) -> None:
    """A note on an alarm, whatever its status."""
    _load(conn, alarm_id)
    _note(conn, alarm_id, NoteAction.COMMENT, by, text, now)
