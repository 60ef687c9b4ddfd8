"""Data quality: sequence gaps per device, dead-letter reasons, duplicates, ingest lag."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from backend.api.deps import CtxDep
from backend.quality import DeviceGaps, sequence_gaps

router = APIRouter(tags=["quality"])


class Quality(BaseModel):
    broker_connected: bool
    database_ok: bool
    ingest_lag_s: float
    broker_dropped: int
    received: int
    stored: int
    duplicates: int
    dead_lettered: int
    dead_letter_reasons: dict[str, int]
    sequence_gaps: list[DeviceGaps]
    missing_total: int


@router.get("/quality", response_model=Quality)
def quality(ctx: CtxDep) -> Quality:
    s = ctx.ingest.stats
    gaps = sequence_gaps(ctx.engine, ctx.settings.retention_days, ctx.clock.now())
    return Quality(
        broker_connected=ctx.ingest.connected.is_set(),
        database_ok=s.db_ok,
        ingest_lag_s=round(ctx.ingest.lag_seconds(), 3),
        broker_dropped=s.broker_dropped,
        received=s.received,
        stored=s.stored,
        duplicates=s.duplicates,
        dead_lettered=s.dead_lettered,
        dead_letter_reasons=dict(s.reasons),
        sequence_gaps=gaps,
        missing_total=sum(g.missing for g in gaps),
    )
