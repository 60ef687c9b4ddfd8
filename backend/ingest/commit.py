"""Commit a batch until it is done: retry while the database is away, split a batch it refuses
until the culprit is alone, quarantine that one as a dead letter. Only what was committed is
handed on to be acknowledged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from backend.ingest.classify import Incoming
from backend.ingest.persist import BatchResult
from backend.ingest.stats import IngestStats

log = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", as opposed to "it refuses this row".
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, TimeoutError)


class Committer:
    """Drives `write` (a whole batch, one transaction) and `quarantine` (one message as a dead
    letter) until each message is committed one way or the other, then calls `committed`.
    Neither may have committed anything when it raises."""

    def __init__(
        self,
        write: Callable[[list[Incoming]], BatchResult],
        quarantine: Callable[[Incoming], BatchResult],
        committed: Callable[[list[Incoming], BatchResult], None],
        stats: IngestStats,
        stop: threading.Event,
        first_delay_s: float = 0.1,
    ) -> None:
        self._write = write
        self._quarantine = quarantine
        self._committed = committed
        self._stats = stats
        self._stop = stop
        self._first_delay_s = first_delay_s

    def commit(self, batch: list[Incoming]) -> None:
        delay = self._first_delay_s
        while not self._stop.is_set():
            try:
                result = self._write(batch)
            except TRANSIENT:
                # The database is away or locked: keep the batch, do not ack, retry with backoff.
                # The broker holds everything else meanwhile (natural backpressure).
                self._stats.db_errors += 1
                self._stats.db_ok = False
                log.warning("database unavailable; retrying in %.1fs", delay, exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception:
                # A message the database refuses for good would block ingest forever if retried:
                # split the batch until the culprit is alone, then dead-letter it.
                self._stats.db_errors += 1
                log.exception("batch of %d refused by the database; isolating", len(batch))
                if len(batch) > 1:
                    half = len(batch) // 2
                    self.commit(batch[:half])
                    self.commit(batch[half:])
                else:
                    self._isolate(batch[0])
                return
            self._stats.db_ok = True
            self._committed(batch, result)
            return

    def _isolate(self, item: Incoming) -> None:
        try:
            result = self._quarantine(item)
        except TRANSIENT:
            self.commit([item])  # the database went away meanwhile: start over
            return
        self._committed([item], result)
