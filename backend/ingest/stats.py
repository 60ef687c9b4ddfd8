"""The ingest counters that /health, /quality and /metrics read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from backend.ingest.drops import DropWatch


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
    # Retained messages refused on channels that are never retained (dead-lettered `retained`),
    # the clears we sent for them, and empty retained messages (clears) acknowledged and ignored.
    retained_discarded: int = 0
    retained_clears_sent: int = 0
    retained_clears_ignored: int = 0
    # Mosquitto's $SYS drop counter, made datable (backend/ingest/drops.py).
    drops: DropWatch = field(default_factory=DropWatch)

    @property
    def broker_dropped(self) -> int:
        """The broker's own total since it started, all clients (Mosquitto's $SYS)."""
        return self.drops.broker_total
