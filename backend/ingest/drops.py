"""Broker drops made loud: Mosquitto's cumulative `$SYS/broker/publish/messages/dropped` turned
into drops we can date (a window of recent increases for /health), drops since this backend
started and the broker's own total, with a baseline kept in the database so that a backend that
was away while the broker dropped messages still reports them when it returns.

How the baseline is decided. The counter counts from the broker's start and every `$SYS` topic
is retained, so the first value a session sees may be old. After each connect we wait for both
the broker's uptime and its counter (the two retained values arrive right after the
subscription, or at the broker's next `sys_interval` tick), then compare with the last
observation we kept (this process's, else the database's: `load_observation`):
- none at all (a new database): the whole counter counts as drops now. We cannot tell when they
  happened, and loud beats silent; a fresh broker's counter is 0.
- the broker started after that observation (`seen_at - uptime`, never earlier than the true
  start, is later than when we last saw it), its uptime went backwards, or its counter did: the
  broker restarted and its counter began again at 0, so all of it is new.
- otherwise the same broker run: only the increase over the kept counter is new.
Afterwards each change of the counter adds its increase (a counter that goes down restarted).
The observation is saved again on every change of uptime or counter, by the writer thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend.ingest.persist import dialect_insert
from backend.models import BrokerObservation, table

log = logging.getLogger(__name__)

SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_UPTIME = "$SYS/broker/uptime"
# /health stays `degraded` while drops happened in this window (wall time).
DROP_WINDOW_S = 300.0


@dataclass(frozen=True)
class Observation:
    """The broker's counter and uptime, and when (wall time) we saw them."""

    dropped: int
    uptime_s: int
    seen_at: datetime

    @property
    def broker_started(self) -> datetime:
        return self.seen_at - timedelta(seconds=self.uptime_s)


def parse_uptime(payload: bytes) -> int:
    """`$SYS/broker/uptime` reads "123 seconds"."""
    return int(payload.decode().split()[0])


def parse_count(payload: bytes) -> int:
    return int(payload.decode().strip())


def new_drops(last: Observation | None, now: Observation) -> int:
    """How many of the counter in `now` were dropped since `last` (see the module's docstring)."""
    if last is None:
        return now.dropped
    restarted = (
        now.dropped < last.dropped
        or now.uptime_s < last.uptime_s
        or now.broker_started > last.seen_at
    )
    return now.dropped if restarted else now.dropped - last.dropped


class DropWatch:
    """Fed by the ingest session's network thread (`connected`, `on_uptime`, `on_dropped`), read
    by /health, /quality and /metrics, saved by the writer thread (`unsaved`)."""

    def __init__(self, window_s: float = DROP_WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._last: Observation | None = None  # the baseline: judged, or loaded
        self._uptime: tuple[int, datetime] | None = None  # since the latest connect
        self._counter: int | None = None
        self._judged = False
        self._dirty = False
        self._recent: deque[tuple[datetime, int]] = deque()
        self.since_start = 0  # drops seen since this backend started
        self.broker_total = 0  # the broker's counter as last seen

    def load(self, last: Observation | None) -> None:
        """The observation kept by an earlier backend (before the first connect)."""
        with self._lock:
            if self._last is None:
                self._last = last

    def connected(self) -> None:
        """A new session: the retained values that follow may be old; judge them afresh."""
        with self._lock:
            self._uptime, self._counter, self._judged = None, None, False

    def on_uptime(self, uptime_s: int, at: datetime) -> None:
        with self._lock:
            self._uptime = (uptime_s, at)
            self._settle(at)

    def on_dropped(self, value: int, at: datetime) -> None:
        with self._lock:
            self._counter = value
            self._settle(at)

    def _settle(self, at: datetime) -> None:
        if self._uptime is None or self._counter is None:
            return  # wait for the other retained value
        # The uptime as received, with when: `broker_started` is then never before the true
        # start, and a later value of the same run is never smaller.
        now = Observation(self._counter, *self._uptime)
        if self._judged:
            assert self._last is not None
            last = self._last
            increase = now.dropped - last.dropped if now.dropped >= last.dropped else now.dropped
        else:
            increase = new_drops(self._last, now)
            self._judged = True
        if increase > 0:
            self._prune(at)
            self._recent.append((at, increase))
            self.since_start += increase
            log.warning("the broker dropped %d messages (its total: %d)", increase, now.dropped)
        self.broker_total = now.dropped
        self._last = now
        self._dirty = True

    def _prune(self, now: datetime) -> None:
        # Also on every append: the window stays bounded even when nobody reads it.
        cutoff = now - timedelta(seconds=self.window_s)
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()

    def recent(self, now: datetime | None = None) -> int:
        """Drops seen in the last `window_s` seconds (wall time)."""
        with self._lock:
            self._prune(now or datetime.now(UTC))
            return sum(n for _, n in self._recent)

    def unsaved(self) -> Observation | None:
        """The observation to save, if it changed since the last call."""
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
            return self._last

    def unsave(self) -> None:
        """Saving failed: try again later."""
        with self._lock:
            self._dirty = True


def load_observation(engine: Engine, broker: str) -> Observation | None:
    tbl = table(BrokerObservation)
    with engine.connect() as conn:
        row = conn.execute(select(tbl).where(tbl.c.broker == broker)).first()
    if row is None:
        return None
    return Observation(int(row.dropped), int(row.uptime_s), row.observed_at)


def save_observation(engine: Engine, broker: str, seen: Observation) -> None:
    tbl = table(BrokerObservation)
    values = {"dropped": seen.dropped, "uptime_s": seen.uptime_s, "observed_at": seen.seen_at}
    with engine.begin() as conn:
        stmt = dialect_insert(conn, tbl).values(broker=broker, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["broker"], set_=values))
