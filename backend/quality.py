"""Loss detection: gaps in each device's sequence numbers, computed from what is stored, and the
broker's drops as ingest follows them (backend/ingest/drops.py), which show at once, before the
devices speak again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from backend.ingest.drops import DropWatch
from backend.models import UTCDateTime

# Gaps between consecutive stored sequence numbers of one device's own messages within one
# boot (injected events carry seq 0 and are left out). Computed from what is stored, so it stays
# right when messages arrive out of order or through several backend replicas. Only the
# retention window is examined, on the same clock as the purge (street time, the events' `ts`):
# purged personal events would otherwise look like losses.
GAPS_SQL = text(
    """
    SELECT device_id, prev, seq FROM (
        SELECT device_id, seq,
               LAG(seq) OVER (PARTITION BY device_id, boot ORDER BY seq) AS prev
        FROM event WHERE injected = :false AND ts >= :since
    ) AS ordered
    WHERE seq - prev > 1
    ORDER BY device_id, seq
    """
).bindparams(bindparam("since", type_=UTCDateTime()))


class BrokerDrops(BaseModel):
    """Messages the broker dropped (full queues), counted from Mosquitto's $SYS counter."""

    recent: int = Field(description="dropped in the last `window_s` seconds (wall time)")
    window_s: float
    since_backend_start: int = Field(description="dropped since this backend started")
    broker_total: int = Field(description="the broker's counter: all clients, since it started")


def broker_drops(drops: DropWatch) -> BrokerDrops:
    return BrokerDrops(
        recent=drops.recent(),
        window_s=drops.window_s,
        since_backend_start=drops.since_start,
        broker_total=drops.broker_total,
    )


def drop_reason(drops: BrokerDrops) -> str | None:
    """Why /health is degraded because of broker drops (None: no drops in the window)."""
    if drops.recent <= 0:
        return None
    minutes = f"{drops.window_s / 60:g} min"
    return f"the broker dropped {drops.recent} messages in the last {minutes}"


class Gap(BaseModel):
    after_seq: int
    before_seq: int
    missing: int


class DeviceGaps(BaseModel):
    device_id: str
    missing: int
    gaps: list[Gap]


def sequence_gaps(
    engine: Engine, retention_days: float, now: datetime | None = None
) -> list[DeviceGaps]:
    """`now` is street time (default: wall time, a street without a simulator)."""
    since = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    with engine.connect() as conn:
        rows = conn.execute(GAPS_SQL, {"false": False, "since": since}).all()
    out: dict[str, DeviceGaps] = {}
    for row in rows:
        device_id, prev, seq = str(row[0]), int(row[1]), int(row[2])
        entry = out.setdefault(device_id, DeviceGaps(device_id=device_id, missing=0, gaps=[]))
        gap = Gap(after_seq=prev, before_seq=seq, missing=seq - prev - 1)
        entry.gaps.append(gap)
        entry.missing += gap.missing
    return list(out.values())
