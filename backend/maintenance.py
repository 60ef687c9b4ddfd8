"""Periodic upkeep: command time-outs, offline alarms, retention purge (silent devices: twins).

Command time-outs are on the wall clock (delivery is machinery); the retention period is street
time (it concerns when residents' events happened), backend/street_clock.py."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from backend import commands
from backend.alarms import AlarmChange, AlarmEngine
from backend.models import Event, table
from contracts.catalogue import load_builtin_kinds

log = logging.getLogger(__name__)


def expire_commands(engine: Engine, timeout_s: float, now: datetime) -> int:
    """Commands with no final answer by their (wall) deadline end as timed-out, at street time
    `now`."""
    with engine.begin() as conn:
        return commands.expire(conn, timeout_s, now)


def sweep_alarms(engine: Engine, alarms: AlarmEngine) -> list[AlarmChange]:
    with engine.begin() as conn:
        return alarms.sweep(conn)


def purge_personal(engine: Engine, retention_days: float, now: datetime | None = None) -> int:
    """Delete events that concern residents once older (street time: their `ts`) than the
    retention period; the hourly aggregates (stat_hourly) are kept."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    ev = table(Event).c
    removed = 0
    with engine.begin() as conn:
        for kind, spec in load_builtin_kinds().items():
            if not spec.personal_events:
                continue
            res = conn.execute(
                delete(table(Event)).where(
                    ev.kind == kind, ev.type.in_(sorted(spec.personal_events)), ev.ts < cutoff
                )
            )
            removed += int(res.rowcount or 0)
    if removed:
        log.info("retention: purged %d personal events older than %s", removed, cutoff)
    return removed
