"""The simulated clock: real time or accelerated, mapping simulated instants to wall time."""

from __future__ import annotations

import time
from datetime import datetime, timedelta


class SimClock:
    """Simulated time runs `speed` times faster than the monotonic wall clock from `start`."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.start = start
        self.speed = speed
        self._mono0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._mono0) * self.speed)

    def monotonic_at(self, sim: datetime) -> float:
        """The monotonic time at which the simulated instant `sim` is reached."""
        return self._mono0 + (sim - self.start).total_seconds() / self.speed
