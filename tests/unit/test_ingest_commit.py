"""Unit tests of ingest's commit policy (backend/ingest/commit.py) with a fake database: only
committed messages are handed on to be acknowledged; a database that is away is waited for; a
message it refuses for good is isolated and quarantined alone. No database, no broker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from backend.ingest.classify import Incoming
from backend.ingest.commit import Committer
from backend.ingest.persist import BatchResult
from backend.ingest.stats import IngestStats

NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
AWAY = OperationalError("INSERT", {}, Exception("database is locked"))


def items(*names: str) -> list[Incoming]:
    return [
        Incoming(f"lijia/gate/{n}/events", b"{}", NOW, mid=i, qos=1) for i, n in enumerate(names)
    ]


class FakeDatabase:
    """Refuses any batch holding a poisoned message; is away for the next `away` attempts."""

    def __init__(self, poison: set[str] | None = None, away: int = 0) -> None:
        self.poison = poison or set()
        self.away = away
        self.quarantine_away = 0
        self.attempts = 0
        self.committed: list[list[str]] = []  # topics of each committed batch, in order
        self.quarantined: list[str] = []
        self.before_write: Callable[[], None] = lambda: None

    def write(self, batch: list[Incoming]) -> BatchResult:
        self.before_write()
        self.attempts += 1
        if self.away:
            self.away -= 1
            raise AWAY
        if any(item.topic in self.poison for item in batch):
            raise ValueError("refused")
        return BatchResult(stored=len(batch))

    def quarantine(self, item: Incoming) -> BatchResult:
        if self.quarantine_away:
            self.quarantine_away -= 1
            raise AWAY
        self.quarantined.append(item.topic)
        return BatchResult(dead_lettered=1, reasons={"storage-error": 1})


HandedOn = list[tuple[list[str], BatchResult]]  # topics of each batch handed on, and its result


def committer(
    db: FakeDatabase, stats: IngestStats, stop: threading.Event | None = None
) -> tuple[Committer, HandedOn]:
    handed_on: HandedOn = []

    def committed(batch: list[Incoming], result: BatchResult) -> None:
        handed_on.append(([item.topic for item in batch], result))

    c = Committer(db.write, db.quarantine, committed, stats, stop or threading.Event(), 0.001)
    return c, handed_on


def test_a_batch_is_handed_on_once_after_its_commit() -> None:
    db, stats = FakeDatabase(), IngestStats()
    c, handed_on = committer(db, stats)
    batch = items("a", "b", "c")
    c.commit(batch)
    assert handed_on == [([i.topic for i in batch], BatchResult(stored=3))]
    assert (stats.db_errors, stats.db_ok, db.attempts) == (0, True, 1)


def test_while_the_database_is_away_nothing_is_handed_on_and_the_batch_is_retried() -> None:
    db, stats = FakeDatabase(away=3), IngestStats()
    seen_down: list[bool] = []
    db.before_write = lambda: seen_down.append(stats.db_ok)
    c, handed_on = committer(db, stats)
    c.commit(items("a", "b"))
    assert db.attempts == 4 and stats.db_errors == 3
    assert seen_down == [True, False, False, False]  # reported down while it was away
    assert stats.db_ok is True
    assert [topics for topics, _ in handed_on] == [["lijia/gate/a/events", "lijia/gate/b/events"]]


def test_a_refused_message_is_isolated_and_quarantined_alone() -> None:
    names = [f"d{n}" for n in range(7)]
    batch = items(*names)
    db, stats = FakeDatabase(poison={batch[4].topic}), IngestStats()
    c, handed_on = committer(db, stats)
    c.commit(batch)
    assert db.quarantined == [batch[4].topic]
    # Every message handed on exactly once, in order, the culprit as a dead letter.
    topics = [t for batch_topics, _ in handed_on for t in batch_topics]
    assert topics == [item.topic for item in batch]
    assert [r.dead_lettered for _, r in handed_on if r.dead_lettered] == [1]
    assert sum(r.stored for _, r in handed_on) == 6
    assert stats.db_errors == 4  # the batches of 7, 4, 2 and 1 holding the culprit


def test_a_database_gone_while_quarantining_starts_the_message_over() -> None:
    batch = items("only")
    db, stats = FakeDatabase(poison={batch[0].topic}), IngestStats()
    db.quarantine_away = 1
    c, handed_on = committer(db, stats)
    c.commit(batch)
    assert db.quarantined == [batch[0].topic]
    assert len(handed_on) == 1 and handed_on[0][1].dead_lettered == 1


def test_when_stopping_an_uncommitted_batch_is_left_unacknowledged() -> None:
    stop = threading.Event()
    db, stats = FakeDatabase(away=1), IngestStats()
    db.before_write = stop.set  # the backend shuts down while the database is away
    c, handed_on = committer(db, stats, stop)
    c.commit(items("a"))
    assert handed_on == [] and db.attempts == 1
