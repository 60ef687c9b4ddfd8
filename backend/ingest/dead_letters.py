"""Dead letters: what ingest keeps of a refused message (topic, reason, size and hash, never the
payload), collected while a batch is planned and written by `write_dead_letters` only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from backend.ingest.classify import Incoming
from backend.models import DeadLetter, table

REPLAYED = "replayed-seq: another message already had this boot and seq"
STORAGE_ERROR = "storage-error: refused by the database"


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def reason_code(reason: str) -> str:
    """The short code a reason starts with ("unknown-device: ..." -> "unknown-device")."""
    return reason.split(":", 1)[0]


@dataclass
class DeadLetters:
    """The dead-letter rows of one batch and how many of each reason code."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, item: Incoming, reason: str) -> None:
        code = reason_code(reason)
        self.reasons[code] = self.reasons.get(code, 0) + 1
        self.rows.append(
            {
                "topic": item.topic[:200],
                "reason": reason,
                "received_at": item.received_at,
                "size": len(item.payload),
                "sha256": digest(item.payload),
            }
        )

    def copy(self) -> DeadLetters:
        return DeadLetters(list(self.rows), dict(self.reasons))


def write_dead_letters(conn: Connection, dead: DeadLetters) -> None:
    """The one place dead letters reach the database, inside the batch's transaction."""
    if dead.rows:
        conn.execute(insert(table(DeadLetter)), dead.rows)
