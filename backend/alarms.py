"""The alarm engine: evaluates every kind's declared rules (contracts/alarms.py) inside the
ingest transaction, and sweeps for conditions that time alone creates (offline, overdue)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
    TelemetryRule,
    compare,
    matches,
)
from contracts.catalogue import load_builtin_kinds
from contracts.vocabulary import Severity

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


# Statements of the per-message paths, built once: building and cache-keying a Core statement
# per message cost more than executing it (profile in docs/benchmarks.md, section 1).
_COUNT_AGAIN = (
    update(ALARM)
    .where(ALARM.c.id == bindparam("b_id"))
    .values(
        occurrences=bindparam("occurrences"),
        last_at=bindparam("last_at"),
        updated_at=bindparam("updated_at"),
        details=bindparam("details"),
    )
)
_OPEN_BY_KEYS = select(
    ALARM.c.id,
    ALARM.c.rule,
    ALARM.c.device_id,
    ALARM.c.severity,
    ALARM.c.occurrences,
    ALARM.c.last_at,
    ALARM.c.details,
    ALARM.c.open_key,
).where(ALARM.c.open_key.in_(bindparam("keys", expanding=True)))
_STATE_BY_DEVICES = select(
    STATE.c.device_id, STATE.c.rule, STATE.c.key, STATE.c.since, STATE.c.due_at
).where(STATE.c.device_id.in_(bindparam("devices", expanding=True)))
_STATE_DELETE = delete(STATE).where(
    STATE.c.device_id == bindparam("b_device_id"),
    STATE.c.rule == bindparam("b_rule"),
    STATE.c.key == bindparam("b_key"),
)
_STATE_UPSERTS: dict[str, Any] = {}


def _state_upsert(conn: Connection) -> Any:
    """INSERT … ON CONFLICT DO UPDATE for rule state, per dialect: two replicas that both saw no
    row for the same device (a shared subscription splits a device's messages) must not fail
    each other's batch with a duplicate key."""
    name = conn.dialect.name
    if name not in _STATE_UPSERTS:
        stmt = (postgresql.insert if name == "postgresql" else sqlite.insert)(STATE)
        _STATE_UPSERTS[name] = stmt.on_conflict_do_update(
            index_elements=["device_id", "rule", "key"],
            set_={"since": stmt.excluded.since, "due_at": stmt.excluded.due_at},
        )
    return _STATE_UPSERTS[name]


_BURST_WINDOW = select(EVENT.c.data).where(
    EVENT.c.device_id == bindparam("b_device_id"),
    EVENT.c.type == bindparam("b_type"),
    EVENT.c.ts > bindparam("b_since"),
    EVENT.c.ts <= bindparam("b_until"),
)
# Well under SQLite's limit on bound parameters per statement (32,766 since 3.32; 999 before).
_IN_CHUNK = 500


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def rules_for(kind: str) -> tuple[AlarmRule, ...]:
    spec = load_builtin_kinds().get(kind)
    return spec.alarms if spec else ()


def _acts_on(rule: AlarmRule, channel: str, type_: str) -> bool:
    """Whether `AlarmEngine._apply` can do anything for a message of this channel and type."""
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
    relevant = tuple(r for r in rules if _acts_on(r, channel, type_))
    if len(_RELEVANT) < 10_000:  # types are validated, but keep the cache bounded regardless
        _RELEVANT[(kind, channel, type_)] = (rules, relevant)
    return relevant


def _open_key(rule: str, device_id: str) -> str:
    return f"{rule}|{device_id}"


def open_alarm(conn: Connection, rule: str, device_id: str) -> Any:
    return conn.execute(select(ALARM).where(ALARM.c.open_key == _open_key(rule, device_id))).first()


def _count_again(
    conn: Connection, alarm_id: int, occurrences: int, at: datetime, details: dict[str, Any]
) -> None:
    conn.execute(
        _COUNT_AGAIN,
        {
            "b_id": alarm_id,
            "occurrences": occurrences,
            "last_at": at,
            "updated_at": datetime.now(UTC),
            "details": details,
        },
    )


def _open_new(
    conn: Connection,
    *,
    rule: str,
    device_id: str,
    kind: str,
    severity: Severity,
    title: str,
    at: datetime,
    details: dict[str, Any] | None,
) -> AlarmChange | None:
    """Insert a new open alarm and its "raised" note; None if another writer opened it first."""
    now = datetime.now(UTC)
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
    existing = open_alarm(conn, rule, device_id)
    if existing is not None:
        _count_again(conn, existing.id, existing.occurrences + 1, at, details or existing.details)
        return None
    return _open_new(
        conn,
        rule=rule,
        device_id=device_id,
        kind=kind,
        severity=severity,
        title=title,
        at=at,
        details=details,
    )


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


@dataclass
class _OpenAlarm:
    """An open alarm as the rules of a batch see it."""

    id: int
    rule: str
    device_id: str
    severity: str
    occurrences: int
    last_at: datetime
    details: dict[str, Any]


class _BatchView:
    """The open alarms and rule state of one batch's devices, read with one query each (per 500
    devices) and kept in step with every change the batch makes. Rules then cost a statement
    only when an alarm opens or clears; a normal telemetry message (condition false, nothing
    open) costs none, where it used to cost a SELECT, a DELETE and another SELECT per rule.
    Repeated occurrences and rule state are written at the end of the batch (`flush`).

    It is read inside the ingest transaction after the batch's events were inserted, so on
    SQLite the write lock is already held and nothing can change underneath. On PostgreSQL a
    replica may commit between this read and our writes: opening an alarm another replica
    opened first hits the unique `open_key` and is given up (then re-read), as before; rule
    state is upserted, so the same row written by both does not fail either batch."""

    def __init__(self, conn: Connection, devices: dict[str, str]) -> None:
        self.conn = conn
        self.alarms: dict[str, _OpenAlarm] = {}
        self.recounted: dict[int, _OpenAlarm] = {}  # by id: cleared ones are written too
        # Rule state written by the batch, by row: its last value, or None once dropped.
        self.touched: dict[tuple[str, str, str], tuple[datetime, datetime | None] | None] = {}
        # (device_id, rule) -> key -> (since, due_at)
        self.state: dict[tuple[str, str], dict[str, tuple[datetime, datetime | None]]] = {}
        keys = [_open_key(r.rule, d) for d, kind in devices.items() for r in rules_for(kind)]
        for chunk in _chunks(keys):
            for row in conn.execute(_OPEN_BY_KEYS, {"keys": chunk}):
                self._remember(row)
        with_state = [
            d
            for d, kind in devices.items()
            if any(isinstance(r, TelemetryRule | DeadlineRule) for r in rules_for(kind))
        ]
        for chunk in _chunks(with_state):
            for row in conn.execute(_STATE_BY_DEVICES, {"devices": chunk}):
                self.state.setdefault((row.device_id, row.rule), {})[row.key] = (
                    row.since,
                    row.due_at,
                )

    def _remember(self, row: Any) -> None:
        self.alarms[row.open_key] = _OpenAlarm(
            row.id,
            row.rule,
            row.device_id,
            row.severity,
            row.occurrences,
            row.last_at,
            row.details or {},
        )

    def open(self, rule: str, device_id: str) -> _OpenAlarm | None:
        return self.alarms.get(_open_key(rule, device_id))

    def raise_alarm(
        self,
        *,
        rule: str,
        device_id: str,
        kind: str,
        severity: Severity,
        title: str,
        at: datetime,
        details: dict[str, Any] | None = None,
    ) -> AlarmChange | None:
        """`raise_alarm` against the view, without the lookup; another occurrence on an open
        alarm is written once per batch by `flush` (a condition that holds, such as a shelf out
        of stock, recurs with every telemetry message)."""
        existing = self.open(rule, device_id)
        if existing is not None:
            existing.occurrences += 1
            existing.last_at = at
            existing.details = details or existing.details
            self.recounted[existing.id] = existing
            return None
        change = _open_new(
            self.conn,
            rule=rule,
            device_id=device_id,
            kind=kind,
            severity=severity,
            title=title,
            at=at,
            details=details,
        )
        if change is None:  # another replica opened it first: count on that one from now on
            row = self.conn.execute(_OPEN_BY_KEYS, {"keys": [_open_key(rule, device_id)]}).first()
            if row is not None:
                self._remember(row)
        else:
            self.alarms[_open_key(rule, device_id)] = _OpenAlarm(
                change.alarm_id, rule, device_id, severity, 1, at, details or {}
            )
        return change

    def flush(self) -> None:
        """Write what the batch changed, one executemany per kind of change: occurrences on
        open alarms, then rule state (every row touched is deleted, and those still there at
        the end inserted with their last value: the same table as row by row)."""
        if self.recounted:
            now = datetime.now(UTC)
            self.conn.execute(
                _COUNT_AGAIN,
                [
                    {
                        "b_id": a.id,
                        "occurrences": a.occurrences,
                        "last_at": a.last_at,
                        "updated_at": now,
                        "details": a.details,
                    }
                    for a in self.recounted.values()
                ],
            )
            self.recounted.clear()
        if self.touched:
            self.conn.execute(
                _STATE_DELETE,
                [{"b_device_id": d, "b_rule": r, "b_key": k} for d, r, k in self.touched],
            )
            rows = [
                {"device_id": d, "rule": r, "key": k, "since": v[0], "due_at": v[1]}
                for (d, r, k), v in self.touched.items()
                if v is not None
            ]
            if rows:
                self.conn.execute(_state_upsert(self.conn), rows)
            self.touched.clear()

    def clear(self, rule: str, device_id: str, reason: str) -> AlarmChange | None:
        """`auto_clear` against the view."""
        alarm = self.alarms.pop(_open_key(rule, device_id), None)
        return clear_alarm(self.conn, alarm, by=SYSTEM, reason=reason) if alarm else None

    def states(self, device_id: str, rule: str) -> dict[str, tuple[datetime, datetime | None]]:
        return self.state.get((device_id, rule), {})

    def set_state(
        self, device_id: str, rule: str, key: str, since: datetime, due_at: datetime | None
    ) -> None:
        self.state.setdefault((device_id, rule), {})[key] = (since, due_at)
        self.touched[(device_id, rule, key)] = (since, due_at)

    def drop_state(self, device_id: str, rule: str, key: str) -> None:
        self.state.get((device_id, rule), {}).pop(key, None)
        self.touched[(device_id, rule, key)] = None


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
        view = _BatchView(conn, {it.device_id: it.kind for it in items})
        for item in items:
            for rule in rules_acting_on(item.kind, item.channel, item.type):
                changes.extend(self._apply(view, rule, item))
            if item.device_id not in latest or item.ts > latest[item.device_id].ts:
                latest[item.device_id] = item
        # Time passes on the device's own clock (accelerated simulations included).
        for item in latest.values():
            changes.extend(self._time_passes(view, item.device_id, item.kind, item.ts))
        view.flush()
        return [c for c in changes if c is not None]

    def _apply(self, view: _BatchView, rule: AlarmRule, it: Observed) -> list[AlarmChange]:
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
                out.append(view.raise_alarm(**common, at=it.ts, details=it.data))
            elif it.type in rule.clear_on:
                out.append(view.clear(rule.rule, it.device_id, f"{it.type} received"))
        elif isinstance(rule, BurstRule) and it.channel == "events":
            if it.type == rule.event_type and matches(it.data, rule.where):
                # The window includes this batch's own events: they were inserted before.
                rows = view.conn.execute(
                    _BURST_WINDOW,
                    {
                        "b_device_id": it.device_id,
                        "b_type": rule.event_type,
                        "b_since": it.ts - timedelta(seconds=rule.window_s),
                        "b_until": it.ts,
                    },
                ).all()
                n = sum(1 for r in rows if matches(r.data, rule.where))
                if n >= rule.count:
                    out.append(view.raise_alarm(**common, at=it.ts, details={"count": n}))
        elif isinstance(rule, TelemetryRule) and it.channel == "telemetry":
            out.extend(self._telemetry(view, rule, it, common))
        elif isinstance(rule, DeadlineRule) and it.channel == "events":
            key = it.data.get(rule.key)
            if it.type == rule.start and key is not None:
                due = _parse_due(it.data.get(rule.due_field))
                if due is not None:
                    view.set_state(it.device_id, rule.rule, str(key), it.ts, due)
            elif it.type in rule.end and key is not None:
                view.drop_state(it.device_id, rule.rule, str(key))
        return [c for c in out if c is not None]

    def _telemetry(
        self, view: _BatchView, rule: TelemetryRule, it: Observed, common: dict[str, Any]
    ) -> list[AlarmChange | None]:
        value = it.data.get(rule.field)
        rhs: Any = rule.value
        if isinstance(rhs, str) and rhs.startswith("field:"):
            rhs = it.data.get(rhs.removeprefix("field:"))
        state = view.states(it.device_id, rule.rule).get("")
        if value is not None and compare(value, rule.op, rhs):
            since = state[0] if state else it.ts
            if state is None:
                view.set_state(it.device_id, rule.rule, "", it.ts, None)
            if (it.ts - since).total_seconds() >= rule.for_s:
                return [
                    view.raise_alarm(
                        **common,
                        at=it.ts,
                        details={rule.field: value, "since": since.isoformat()},
                    )
                ]
            return []
        # The usual case: the condition does not hold. Only a state or an alarm to end costs
        # a statement.
        if state is not None:
            view.drop_state(it.device_id, rule.rule, "")
        return [view.clear(rule.rule, it.device_id, "condition ended")]

    # -- time-driven ---------------------------------------------------------------------------
    def _time_passes(
        self, view: _BatchView, device_id: str, kind: str, now: datetime
    ) -> list[AlarmChange]:
        out: list[AlarmChange | None] = []
        for rule in rules_for(kind):
            if isinstance(rule, EventRule | BurstRule):
                quiet = rule.clear_after_s if isinstance(rule, EventRule) else rule.window_s
                alarm = view.open(rule.rule, device_id)
                idle = (now - alarm.last_at).total_seconds() if alarm is not None else 0.0
                if quiet is not None and alarm is not None and idle > quiet:
                    out.append(view.clear(rule.rule, device_id, "quiet period"))
            elif isinstance(rule, DeadlineRule):
                overdue = sum(
                    1
                    for _since, due_at in view.states(device_id, rule.rule).values()
                    if due_at is not None and due_at < now
                )
                if overdue:
                    out.append(
                        view.raise_alarm(
                            rule=rule.rule,
                            device_id=device_id,
                            kind=kind,
                            severity=rule.severity,
                            title=rule.title,
                            at=now,
                            details={"overdue": overdue},
                        )
                    )
                else:
                    out.append(view.clear(rule.rule, device_id, "nothing overdue"))
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
