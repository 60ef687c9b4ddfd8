"""The simulator's status line: a snapshot of the running street and its one-line rendering."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from contracts.vocabulary import STREET_TZ


@dataclass(frozen=True)
class Status:
    """A snapshot for the status line."""

    phase: str  # "connecting" | "running" | "done" (--hours reached) | "stopped"
    connected: int
    total: int
    refused: int
    published: int
    events: int
    errors: int
    dropped: int
    resent: int
    backlog: int
    sim_now: datetime
    clock: str  # the clock's pace: "60x", "max", "60x, paused", "jumping to ..."
    journeys: int
    rss_mb: float | None


def rss_mb() -> float | None:
    """Resident memory of this process (Linux /proc), for the status line."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class StatusLog:
    """Turns snapshots into one line each (devices, rates, errors, simulated time)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self._last: tuple[float, int, int] | None = None

    def line(self, s: Status) -> str:
        now = time.monotonic()
        msg_rate = ev_rate = 0.0
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            msg_rate = (s.published - self._last[1]) / dt
            ev_rate = (s.events - self._last[2]) / dt
        self._last = (now, s.published, s.events)
        sim = s.sim_now.astimezone(STREET_TZ).strftime("%a %Y-%m-%d %H:%M:%S CST")
        parts = [
            f"{s.phase}",
            f"{s.connected}/{s.total} online",
            f"{ev_rate:,.0f} events/s ({msg_rate:,.0f} msg/s)",
            f"{s.errors} errors",
            f"sim {sim} ({s.clock})",
            f"{s.journeys} journeys",
            f"backlog {s.backlog}",
        ]
        if s.refused:
            parts.append(f"{s.refused} refused")
        if s.dropped:
            parts.append(f"{s.dropped} dropped")
        if s.resent:
            parts.append(f"{s.resent} resent after reconnects")
        if s.rss_mb is not None:
            parts.append(f"{s.rss_mb:.0f} MB")
        return " · ".join(parts)

    def __call__(self, s: Status) -> None:
        self.write(self.line(s))
