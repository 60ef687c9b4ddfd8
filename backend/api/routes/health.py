"""Health and data quality: broker connection, database reachability, ingest lag, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import text
from sqlmodel import col, select

from backend.api.deps import CtxDep, SessionDep
from backend.api.schemas import DeadLetterPublic, Health
from backend.models import DeadLetter

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
    healthy = db_ok and broker and lag <= ctx.settings.degraded_lag_s
    return Health(
        status="ok" if healthy else "degraded",
        broker_connected=broker,
        database_ok=db_ok,
        ingest_lag_s=round(lag, 3),
        wall_now=datetime.now(UTC),
        last_commit_at=s.last_commit_at,
        street_now=ctx.clock.now(),
        broker_dropped=s.broker_dropped,
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
