"""The ingest counters that /health, /quality and /metrics read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    db_errors: int = 0
    batches: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    last_commit_at: datetime | None = None
    db_ok: bool = True
    broker_dropped: int = 0  # since the broker started, all clients (Mosquitto's $SYS)
