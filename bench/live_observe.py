"""When each event became visible in the backend's SQLite, and the latency of arrivals."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.common import percentile


def _ts(text: str) -> float:
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" (UTC); the wire has ISO 8601 with an offset.
    text = text.replace(" ", "T")
    dt = datetime.fromisoformat(
        text if ("+" in text[10:] or text.endswith("Z")) else text + "+00:00"
    )
    return dt.timestamp()


class CommitObserver:
    """Polls the backend's SQLite (read-only, WAL) every `interval` s for new rows and notes when
    each event id first became visible: committed at most `interval` + one query earlier."""

    def __init__(self, db: Path, interval: float = 0.01) -> None:
        self.db, self.interval = db, interval
        self.seen: dict[str, tuple[str, float]] = {}  # event_id -> (ts as stored, seen)
        self.counts: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.polls = 0

    def start(self) -> CommitObserver:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        self.last_id = conn.execute("SELECT coalesce(max(id), 0) FROM event").fetchone()[0]
        conn.close()
        self._thread.start()
        return self

    def _run(self) -> None:
        conn = sqlite3.connect(
            f"file:{self.db}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
        while not self._stop.is_set():
            rows = conn.execute(
                "SELECT id, event_id, ts FROM event WHERE id > ? ORDER BY id", (self.last_id,)
            ).fetchall()
            now = time.time()
            self.polls += 1
            for row_id, event_id, ts in rows:
                self.seen.setdefault(event_id, (ts, now))
                self.last_id = row_id
            self.counts.append((now, len(self.seen)))
            self._stop.wait(self.interval)
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _stats(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(latencies_ms, 50),
        "p95_ms": percentile(latencies_ms, 95),
        "p99_ms": percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms) if latencies_ms else float("nan"),
    }


def arrival_stats(
    arrived: dict[str, tuple[str, float]], start: float, stop: float, warmup: float
) -> tuple[float, dict[str, float]]:
    """(steady rate, latency percentiles) of arrivals {event id: (envelope ts, arrival)}: the
    rate counts what arrived between `start` + `warmup` and `stop` (the load was offered)."""
    warm = start + warmup
    in_window = sum(1 for _ts, t in arrived.values() if warm <= t <= stop)
    latencies = [(t - _ts(ts)) * 1000 for ts, t in arrived.values()]
    return in_window / (stop - warm), _stats(latencies)
