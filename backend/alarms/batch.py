"""One ingest batch's view of alarms: its devices' open alarms and rule state, read once.

The view is kept in step with the rules' decisions and written back at the end of the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from backend.alarms import lifecycle
from backend.alarms.lifecycle import SYSTEM, AlarmChange, OpenAlarm, open_key
from backend.alarms.rules import (
    Clear,
    Decision,
    Forget,
    Memory,
    Occur,
    Raise,
    Remember,
    keeps_state,
    rules_for,
)
from backend.models import Event, RuleState, table
from contracts.alarms import AlarmRule

STATE, EVENT = table(RuleState), table(Event)

_STATE_BY_DEVICES = select(
    STATE.c.device_id, STATE.c.rule, STATE.c.key, STATE.c.since, STATE.c.due_at
).where(STATE.c.device_id.in_(bindparam("devices", expanding=True)))
_STATE_DELETE = delete(STATE).where(
    STATE.c.device_id == bindparam("b_device_id"),
    STATE.c.rule == bindparam("b_rule"),
    STATE.c.key == bindparam("b_key"),
)
_STATE_UPSERTS: dict[str, Any] = {}
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


class BatchView:
    """The open alarms and rule state of one batch's devices, read with one query each (per 500
    devices) and kept in step with every decision the batch applies. Rules then cost a
    statement only when an alarm opens or clears; a normal telemetry message (condition false,
    nothing open) costs none. Repeated occurrences and rule state are written at the end of
    the batch (`flush`).

    It is read inside the ingest transaction after the batch's events were inserted, so on
    SQLite the write lock is already held and nothing can change underneath. On PostgreSQL a
    replica may commit between this read and our writes: opening an alarm another replica
    opened first hits the unique `open_key` and is given up (then re-read); rule state is
    upserted, so the same row written by both does not fail either batch."""

    def __init__(self, conn: Connection, devices: dict[str, str], now: datetime) -> None:
        self.conn = conn
        self.now = now  # street time of the batch: alarms' updated_at and notes
        self.alarms: dict[str, OpenAlarm] = {}
        self.recounted: dict[int, OpenAlarm] = {}  # by id: cleared ones are written too
        # Rule state written by the batch, by row: its last value, or None once dropped.
        self.touched: dict[tuple[str, str, str], tuple[datetime, datetime | None] | None] = {}
        # (device_id, rule) -> key -> (since, due_at)
        self.state: dict[tuple[str, str], dict[str, tuple[datetime, datetime | None]]] = {}
        keys = [open_key(r.rule, d) for d, kind in devices.items() for r in rules_for(kind)]
        for chunk in _chunks(keys):
            for row in conn.execute(lifecycle.OPEN_BY_KEYS, {"keys": chunk}):
                self.alarms[row.open_key] = lifecycle.open_alarm_of(row)
        with_state = [
            d for d, kind in devices.items() if any(keeps_state(r) for r in rules_for(kind))
        ]
        for chunk in _chunks(with_state):
            for row in conn.execute(_STATE_BY_DEVICES, {"devices": chunk}):
                self.state.setdefault((row.device_id, row.rule), {})[row.key] = (
                    row.since,
                    row.due_at,
                )

    def memory(self, rule: str, device_id: str) -> Memory:
        alarm = self.alarms.get(open_key(rule, device_id))
        return Memory(
            alarm.last_at if alarm is not None else None, self.state.get((device_id, rule), {})
        )

    def burst_window(
        self, device_id: str, type_: str, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """The data of a device's events of one type in a window (the batch's own included:
        they were inserted before the rules run)."""
        params = {"b_device_id": device_id, "b_type": type_, "b_since": since, "b_until": until}
        return [r.data for r in self.conn.execute(_BURST_WINDOW, params)]

    def apply(
        self, rule: AlarmRule, device_id: str, kind: str, decisions: list[Decision]
    ) -> list[AlarmChange]:
        """Persist a rule's decisions for one device, in order."""
        out: list[AlarmChange] = []
        key = open_key(rule.rule, device_id)
        for d in decisions:
            if isinstance(d, Remember):
                self.state.setdefault((device_id, rule.rule), {})[d.key] = (d.since, d.due_at)
                self.touched[(device_id, rule.rule, d.key)] = (d.since, d.due_at)
            elif isinstance(d, Forget):
                self.state.get((device_id, rule.rule), {}).pop(d.key, None)
                self.touched[(device_id, rule.rule, d.key)] = None
            elif isinstance(d, Raise | Occur) and key in self.alarms:
                alarm = self.alarms[key]
                lifecycle.occur_again(alarm, d.at, d.details)
                self.recounted[alarm.id] = alarm
            elif isinstance(d, Raise | Occur):
                change = self._raise(rule, device_id, kind, d)
                if change is not None:
                    out.append(change)
            elif isinstance(d, Clear):
                ended = self.alarms.pop(key, None)
                if ended is not None:
                    out.append(
                        lifecycle.clear(self.conn, ended, by=SYSTEM, reason=d.reason, now=self.now)
                    )
        return out

    def _raise(
        self, rule: AlarmRule, device_id: str, kind: str, d: Raise | Occur
    ) -> AlarmChange | None:
        change = lifecycle.raise_new(
            self.conn,
            rule=rule.rule,
            device_id=device_id,
            kind=kind,
            severity=rule.severity,
            title=rule.title.joined(),
            at=d.at,
            details=d.details,
            now=self.now,
        )
        key = open_key(rule.rule, device_id)
        if change is None:  # another replica opened it first: count on that one from now on
            found = lifecycle.find_open(self.conn, rule.rule, device_id)
            if found is not None:
                self.alarms[key] = found
        else:
            self.alarms[key] = OpenAlarm(
                change.alarm_id, rule.rule, device_id, rule.severity, 1, d.at, d.details or {}
            )
        return change

    def flush(self) -> None:
        """Write what the batch changed, one executemany per kind of change: occurrences on
        open alarms, then rule state (every row touched is deleted, and those still there at
        the end inserted with their last value: the same table as row by row)."""
        if self.recounted:
            lifecycle.write_occurrences(self.conn, list(self.recounted.values()), self.now)
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
