"""Loss detection: gaps in each device's sequence numbers, computed from what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

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
