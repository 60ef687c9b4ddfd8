"""The simulated clock: real time, accelerated, or as fast as possible (`speed=None`, "max").

With a speed, simulated time runs `speed` times faster than the monotonic wall clock from the
moment the clock begins. At "max" it is a virtual clock that the runner moves to each due
instant in turn (`advance`): the street runs back to back in simulated-time order, paced only by
how fast MQTT takes the messages.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

MAX = "max"


def parse_speed(text: str | float) -> float | None:
    """`"max"` -> None (as fast as possible); otherwise a positive float (1 = real time)."""
    if isinstance(text, str) and text.strip().lower() == MAX:
        return None
    speed = float(text)
    if not math.isfinite(speed) or speed <= 0:
        raise ValueError("speed must be a positive number or 'max'")
    return speed


def speed_label(speed: float | None) -> str:
    return MAX if speed is None else f"{speed:g}x"


class SimClock:
    """Maps simulated instants to wall time; `speed=None` is the as-fast-as-possible clock."""

    def __init__(self, start: datetime | None = None, speed: float | None = 1.0) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._requested = start
        self.start = start or datetime.now(UTC)
        self.speed = speed
        self._mono0 = time.monotonic()
        self._virtual = self.start

    @property
    def max_speed(self) -> bool:
        return self.speed is None

    def begin(self) -> datetime:
        """Simulated time starts now (at the given start instant, or at the wall clock's now)."""
        self.start = self._requested or datetime.now(UTC)
        self._mono0 = time.monotonic()
        self._virtual = self.start
        return self.start

    def now(self) -> datetime:
        if self.speed is None:
            return self._virtual
        return self.start + timedelta(seconds=(time.monotonic() - self._mono0) * self.speed)

    def advance(self, sim: datetime) -> None:
        """At max speed: the simulation has reached `sim` (never moves backwards)."""
        if sim > self._virtual:
            self._virtual = sim

    def monotonic_at(self, sim: datetime) -> float:
        """The monotonic time at which the simulated instant `sim` is reached (at max speed:
        as soon as the runner gets to it, i.e. now)."""
        if self.speed is None:
            return time.monotonic()
        return self._mono0 + (sim - self.start).total_seconds() / self.speed
