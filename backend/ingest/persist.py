"""Persist one planned batch in one transaction: replay check, events (insert-or-ignore), hourly
counts, dead letters, twins, alarms and command results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from backend import commands, twins
from backend.alarms import AlarmChange, AlarmEngine
from backend.ingest.classify import Incoming, Rules
from backend.ingest.dead_letters import REPLAYED, write_dead_letters
from backend.ingest.plan import (
    BatchPlan,
    EventRow,
    find_replays,
    hourly_counts,
    observations,
    plan_batch,
    replay_candidates,
    unique_events,
)
from backend.ingest.replays import stored_seqs
from backend.models import Event, StatHourly, table


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # For the live stream, reported only after the commit.
    new_events: list[dict[str, Any]] = field(default_factory=list)
    alarm_changes: list[AlarmChange] = field(default_factory=list)
    availability: list[dict[str, Any]] = field(default_factory=list)
    # Retained copies to clear at the broker (refused as `retained`), and clears we ignored.
    clear_retained: list[str] = field(default_factory=list)
    clears_ignored: int = 0


def write_batch(
    engine: Engine, rules: Rules, batch: list[Incoming], alarms: AlarmEngine | None = None
) -> BatchResult:
    """Classify and plan a batch (pure), then persist it atomically. Raises only on database
    errors (then nothing is committed and the caller must not acknowledge)."""
    return persist(engine, plan_batch(batch, rules), alarms)


def persist(engine: Engine, plan: BatchPlan, alarms: AlarmEngine | None = None) -> BatchResult:
    """Write a plan in one transaction; the plan itself is left as it was."""
    result = BatchResult()
    events = list(plan.events)
    dead = plan.dead.copy()
    with engine.begin() as conn:
        for row in find_replays(events, stored_seqs(conn, replay_candidates(events))):
            events.remove(row)
            dead.add(plan.origin[row["event_id"]], REPLAYED)
        unique = unique_events(events)
        new_ids = _insert_ignore(conn, unique)
        fresh = [row for row in unique if row["event_id"] in new_ids]
        result.stored = len(fresh)
        result.duplicates = len(events) - result.stored
        _count_stats(conn, fresh)
        write_dead_letters(conn, dead)
        twins.update_twins(conn, plan.twins)
        for device_id, values in plan.twins.items():
            if "availability" in values:
                result.availability.append({"device_id": device_id, **values})
                if alarms:
                    result.alarm_changes += alarms.availability(
                        conn, device_id, values["availability"]
                    )
        if alarms and fresh:
            result.alarm_changes += alarms.observe(conn, observations(fresh))
        result.new_events = fresh
        commands.apply_results(
            conn, [(env.device_id, res, at) for env, res, at in plan.command_results]
        )
    result.reasons = dead.reasons
    result.dead_lettered = len(dead.rows)
    result.clear_retained = list(plan.clear_retained)
    result.clears_ignored = plan.clears_ignored
    return result


def dialect_insert(conn: Connection, tbl: Any) -> Any:
    """INSERT with ON CONFLICT support for the two databases we run on."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(tbl)
    if dialect == "postgresql":
        return postgresql.insert(tbl)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


def _insert_ignore(conn: Connection, rows: list[EventRow]) -> set[str]:
    """Insert-or-ignore on event_id; returns the ids that were new."""
    if not rows:
        return set()
    events = table(Event)
    stmt = dialect_insert(conn, events).on_conflict_do_nothing(index_elements=["event_id"])
    # RETURNING yields only the rows actually inserted, so duplicates are counted exactly,
    # even with several replicas writing at once.
    return {r[0] for r in conn.execute(stmt.returning(events.c.event_id), rows).all()}


def _count_stats(conn: Connection, rows: list[EventRow]) -> None:
    """Hourly headline counts, kept when personal events are purged."""
    counts = hourly_counts(rows)
    if not counts:
        return
    tbl = table(StatHourly)
    stmt = dialect_insert(conn, tbl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_id", "stat", "hour"],
        set_={"count": tbl.c.count + stmt.excluded.count},
    )
    conn.execute(
        stmt,
        [
            {"device_id": d, "stat": s, "hour": h, "kind": k, "count": n}
            for (d, s, h, k), n in counts.items()
        ],
    )
