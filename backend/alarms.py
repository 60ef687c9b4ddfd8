"""The alarm engine: evaluates every kind's declared rules (contracts/alarms.py) inside the
ingest transaction, and sweeps for conditions that time alone creates (offline, overdue)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backend.models import Alarm, AlarmNote, Device, Event, RuleState, table
from contracts.alarms import (
    OFFLINE_RULE,
    OFFLINE_SEVERITY,
    AlarmRule,
    BurstRule,
    DeadlineRule,
    EventRule,
    Severity,
    TelemetryRule,
    compare,
    matches,
)
from contracts.catalogue import load_builtin_kinds

log = logging.getLogger(__name__)

SYSTEM = "system"
ALARM, NOTE, STATE, EVENT, DEVICE = (
    table(Alarm),
    table(AlarmNote),
    table(RuleState),
    table(Event),
    table(Device),
)


@dataclass(frozen=True)
class AlarmChange:
    """Reported to the live stream after commit."""

    alarm_id: int
    rule: str
    device_id: str
    status: str
    severity: str


@dataclass(frozen=True)
class Observed:
    """A newly stored envelope, as the rules see it."""

    device_id: str
    kind: str
    channel: str
    type: str
    ts: datetime
    data: dict[str, Any]


def rules_for(kind: str) -> tuple[AlarmRule, ...]:
    spec = load_builtin_kinds().get(kind)
    return spec.alarms if spec else ()


def _open_key(rule: str, device_id: str) -> str:
    return f"{rule}|{device_id}"


def open_alarm(conn: Connection, rule: str, device_id: str) -> Any:
    return conn.execute(select(ALARM).where(ALARM.c.open_key == _open_key(rule, device_id))).first()


def raise_alarm(
    conn: Connection,
    *,
    rule: str,
    device_id: str,
    kind: str,
    severity: Severity,
    title: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> AlarmChange | None:
    """Open an alarm, or count one more occurrence on the open one (no flood)."""
    now = datetime.now(UTC)
    existing = open_alarm(conn, rule, device_id)
    if existing is not None:
        conn.execute(
            update(ALARM)
            .where(ALARM.c.id == existing.id)
            .values(
                occurrences=existing.occurrences + 1,
                last_at=at,
                updated_at=now,
                details=details or existing.details,
            )
        )
        return None
    try:
        with conn.begin_nested():  # a racing replica may have opened it first
            alarm_id = conn.execute(
                insert(ALARM).values(
                    rule=rule,
                    device_id=device_id,
                    kind=kind,
                    severity=severity,
                    title=title or rule,
                    status="active",
                    open_key=_open_key(rule, device_id),
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
    alarm_id = alarm_id[0]
    conn.execute(insert(NOTE).values(alarm_id=alarm_id, action="raised", author=SYSTEM, at=now))
    return AlarmChange(alarm_id, rule, device_id, "active", severity)


def clear_alarm(
    conn: Connection, alarm: Any, *, by: str, reason: str, comment: str | None = None
) -> AlarmChange:
    now = datetime.now(UTC)
    conn.execute(
        update(ALARM)
        .where(ALARM.c.id == alarm.id)
        .values(
            status="cleared",
            open_key=None,
            cleared_by=by,
            cleared_at=now,
            clear_reason=reason,
            updated_at=now,
        )
    )
    conn.execute(
        insert(NOTE).values(
            alarm_id=alarm.id, action="cleared", author=by, text=comment or reason, at=now
        )
    )
    return AlarmChange(alarm.id, alarm.rule, alarm.device_id, "cleared", alarm.severity)


def auto_clear(conn: Connection, rule: str, device_id: str, reason: str) -> AlarmChange | None:
    alarm = open_alarm(conn, rule, device_id)
    return clear_alarm(conn, alarm, by=SYSTEM, reason=reason) if alarm is not None else None


def _parse_due(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        due = datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=UTC)


class AlarmEngine:
    """Stateless between calls: everything it remembers lives in the database."""

    def __init__(self, offline_after_s: float = 300.0) -> None:
        self.offline_after_s = offline_after_s

    # -- per message ---------------------------------------------------------------------------
    def observe(self, conn: Connection, items: list[Observed]) -> list[AlarmChange]:
        changes: list[AlarmChange] = []
        latest: dict[str, Observed] = {}
        for item in items:
            for rule in rules_for(item.kind):
                changes.extend(self._apply(conn, rule, item))
            if item.device_id not in latest or item.ts > latest[item.device_id].ts:
                latest[item.device_id] = item
        # Time passes on the device's own clock (accelerated simulations included).
        for item in latest.values():
            changes.extend(self._time_passes(conn, item.device_id, item.kind, item.ts))
        return [c for c in changes if c is not None]

    def _apply(self, conn: Connection, rule: AlarmRule, it: Observed) -> list[AlarmChange]:
        out: list[AlarmChange | None] = []
        common: dict[str, Any] = {
            "rule": rule.rule,
            "device_id": it.device_id,
            "kind": it.kind,
            "severity": rule.severity,
            "title": rule.title,
        }
        if isinstance(rule, EventRule) and it.channel == "events":
            if it.type == rule.event_type and matches(it.data, rule.where):
                out.append(raise_alarm(conn, **common, at=it.ts, details=it.data))
            elif it.type in rule.clear_on:
                out.append(auto_clear(conn, rule.rule, it.device_id, f"{it.type} received"))
        elif isinstance(rule, BurstRule) and it.channel == "events":
            if it.type == rule.event_type and matches(it.data, rule.where):
                since = it.ts - timedelta(seconds=rule.window_s)
                rows = conn.execute(
                    select(EVENT.c.data).where(
                        EVENT.c.device_id == it.device_id,
                        EVENT.c.type == rule.event_type,
                        EVENT.c.ts > since,
                        EVENT.c.ts <= it.ts,
                    )
                ).all()
                n = sum(1 for r in rows if matches(r.data, rule.where))
                if n >= rule.count:
                    out.append(raise_alarm(conn, **common, at=it.ts, details={"count": n}))
        elif isinstance(rule, TelemetryRule) and it.channel == "telemetry":
            out.extend(self._telemetry(conn, rule, it, common))
        elif isinstance(rule, DeadlineRule) and it.channel == "events":
            key = it.data.get(rule.key)
            if it.type == rule.start and key is not None:
                due = _parse_due(it.data.get(rule.due_field))
                if due is not None:
                    conn.execute(
                        delete(STATE).where(
                            STATE.c.device_id == it.device_id,
                            STATE.c.rule == rule.rule,
                            STATE.c.key == str(key),
                        )
                    )
                    conn.execute(
                        insert(STATE).values(
                            device_id=it.device_id,
                            rule=rule.rule,
                            key=str(key),
                            since=it.ts,
                            due_at=due,
                        )
                    )
            elif it.type in rule.end and key is not None:
                conn.execute(
                    delete(STATE).where(
                        STATE.c.device_id == it.device_id,
                        STATE.c.rule == rule.rule,
                        STATE.c.key == str(key),
                    )
                )
        return [c for c in out if c is not None]

    def _telemetry(
        self, conn: Connection, rule: TelemetryRule, it: Observed, common: dict[str, Any]
    ) -> list[AlarmChange | None]:
        value = it.data.get(rule.field)
        rhs: Any = rule.value
        if isinstance(rhs, str) and rhs.startswith("field:"):
            rhs = it.data.get(rhs.removeprefix("field:"))
        where = and_(
            STATE.c.device_id == it.device_id, STATE.c.rule == rule.rule, STATE.c.key == ""
        )
        if value is not None and compare(value, rule.op, rhs):
            state = conn.execute(select(STATE.c.since).where(where)).first()
            since = state.since if state else it.ts
            if state is None:
                conn.execute(
                    insert(STATE).values(
                        device_id=it.device_id, rule=rule.rule, key="", since=it.ts
                    )
                )
            if (it.ts - since).total_seconds() >= rule.for_s:
                return [
                    raise_alarm(
                        conn,
                        **common,
                        at=it.ts,
                        details={rule.field: value, "since": since.isoformat()},
                    )
                ]
            return []
        conn.execute(delete(STATE).where(where))
        return [auto_clear(conn, rule.rule, it.device_id, "condition ended")]

    # -- time-driven ---------------------------------------------------------------------------
    def _time_passes(
        self, conn: Connection, device_id: str, kind: str, now: datetime
    ) -> list[AlarmChange]:
        out: list[AlarmChange | None] = []
        for rule in rules_for(kind):
            if isinstance(rule, EventRule | BurstRule):
                quiet = rule.clear_after_s if isinstance(rule, EventRule) else rule.window_s
                alarm = open_alarm(conn, rule.rule, device_id)
                idle = (now - alarm.last_at).total_seconds() if alarm is not None else 0.0
                if quiet is not None and alarm is not None and idle > quiet:
                    out.append(clear_alarm(conn, alarm, by=SYSTEM, reason="quiet period"))
            elif isinstance(rule, DeadlineRule):
                overdue = conn.execute(
                    select(func.count())
                    .select_from(STATE)
                    .where(
                        STATE.c.device_id == device_id,
                        STATE.c.rule == rule.rule,
                        STATE.c.due_at < now,
                    )
                ).scalar_one()
                if overdue:
                    out.append(
                        raise_alarm(
                            conn,
                            rule=rule.rule,
                            device_id=device_id,
                            kind=kind,
                            severity=rule.severity,
                            title=rule.title,
                            at=now,
                            details={"overdue": int(overdue)},
                        )
                    )
                else:
                    out.append(auto_clear(conn, rule.rule, device_id, "nothing overdue"))
        return [c for c in out if c is not None]

    def availability(self, conn: Connection, device_id: str, status: str) -> list[AlarmChange]:
        if status == "online":
            change = auto_clear(conn, OFFLINE_RULE, device_id, "device back online")
            return [change] if change else []
        return []

    def sweep(self, conn: Connection, now: datetime | None = None) -> list[AlarmChange]:
        """Wall-clock conditions: devices offline for too long."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(seconds=self.offline_after_s)
        rows = conn.execute(
            select(DEVICE.c.device_id, DEVICE.c.kind, DEVICE.c.availability_reason).where(
                DEVICE.c.availability == "offline", DEVICE.c.availability_changed_at < cutoff
            )
        ).all()
        out: list[AlarmChange | None] = []
        for row in rows:
            out.append(
                raise_alarm(
                    conn,
                    rule=OFFLINE_RULE,
                    device_id=row.device_id,
                    kind=row.kind,
                    severity=OFFLINE_SEVERITY,
                    title="Device offline too long",
                    at=now,
                    details={"reason": row.availability_reason},
                )
            )
        return [c for c in out if c is not None]
