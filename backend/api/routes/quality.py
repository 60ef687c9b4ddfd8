"""Data quality: broker drops (at once), sequence gaps per device (once devices speak again),
dead-letter reasons, retained copies refused, duplicates, ingest lag."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.deps import CtxDep
from backend.quality import BrokerDrops, DeviceGaps, broker_drops, sequence_gaps

router = APIRouter(tags=["quality"])


class Quality(BaseModel):
    broker_connected: bool
    database_ok: bool
    ingest_lag_s: float
    broker_dropped: int = Field(description="the broker's drop counter (all clients)")
    broker_drops: BrokerDrops
    received: int
    stored: int
    duplicates: int
    dead_lettered: int
    dead_letter_reasons: dict[str, int]
    retained_discarded: int = Field(
        description="retained messages refused where only `state` may be retained"
    )
    retained_clears_sent: int = Field(description="their broker copies cleared by the backend")
    retained_clears_ignored: int = Field(
        description="empty retained messages (clears) acknowledged and ignored"
    )
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
        broker_drops=broker_drops(s.drops),
        received=s.received,
        stored=s.stored,
        duplicates=s.duplicates,
        dead_lettered=s.dead_lettered,
        dead_letter_reasons=dict(s.reasons),
        retained_discarded=s.retained_discarded,
        retained_clears_sent=s.retained_clears_sent,
        retained_clears_ignored=s.retained_clears_ignored,
        sequence_gaps=gaps,
        missing_total=sum(g.missing for g in gaps),
    )
