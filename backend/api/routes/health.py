"""Health and data quality: broker connection, database reachability, ingest lag, broker drops,
dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import text
from sqlmodel import col, select

from backend.api.deps import CtxDep, SessionDep
from backend.api.schemas import DeadLetterPublic, Health
from backend.models import DeadLetter
from backend.quality import broker_drops, drop_reason

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(ctx: CtxDep) -> Health:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db_ok = ctx.ingest.stats.db_ok
    except Exception:
        db_ok = False
    broker = ctx.ingest.connected.is_set()
    s = ctx.ingest.stats
    lag = ctx.ingest.lag_seconds()
    drops = broker_drops(s.drops)
    reasons = [
        why
        for bad, why in (
            (not broker, "the ingest session is not connected to the broker"),
            (not db_ok, "the database refuses writes or is unreachable"),
            (lag > ctx.settings.degraded_lag_s, f"ingest lags {lag:.0f} s behind"),
        )
        if bad
    ]
    # Loss is loud: drops degrade health while they are recent, before any gap can show.
    dropped = drop_reason(drops)
    if dropped:
        reasons.append(dropped)
    return Health(
        status="degraded" if reasons else "ok",
        reasons=reasons,
        broker_connected=broker,
        database_ok=db_ok,
        ingest_lag_s=round(lag, 3),
        wall_now=datetime.now(UTC),
        last_commit_at=s.last_commit_at,
        street_now=ctx.clock.now(),
        broker_dropped=s.broker_dropped,
        broker_drops=drops,
        queue_depth=ctx.ingest.queue.qsize(),
        received=s.received,
        stored=s.stored,
        duplicates=s.duplicates,
        dead_lettered=s.dead_lettered,
        dead_letter_reasons=dict(s.reasons),
    )


@router.get("/dead-letters", response_model=list[DeadLetterPublic])
def dead_letters(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterPublic]:
    rows = session.exec(select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit))
    return [DeadLetterPublic.model_validate(r) for r in rows.all()]
