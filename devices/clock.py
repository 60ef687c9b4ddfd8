"""The simulator's clock (the street's time, contracts/clock.py), and the `--start` parser.

The clock is an anchor, a speed and a pause switch: at the monotonic instant `_mono0` the
street's time was `_street0`, and it then runs `speed` street seconds per wall second. With
`speed=None` ("max") it is a virtual clock that the runner moves to each due instant in turn
(`advance`): the street runs back to back in street-time order, paced only by how fast MQTT takes
the messages. Pause, a speed change and a jump re-anchor it (the operator's controls, applied by
devices/control.py); each change bumps `version`, so the control plane knows to announce it.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day

from contracts.vocabulary import STREET_TZ

# The demo default (`--start demo`, `python -m stack up`): the real clock, unless Chongqing is
# asleep (the street's night is nearly silent: a newcomer would see almost nothing), then the
# next LIVELY_AT. Night is [NIGHT_FROM, LIVELY_AT).
LIVELY_AT = time_of_day(8, 0)
NIGHT_FROM = time_of_day(22, 0)
NIGHT_UNTIL = time_of_day(7, 0)

START_HELP = (
    "the street's start: 'now' (the real clock), 'demo' (the real clock, or the next 08:00 "
    "Chongqing time when it is night there, 22:00-06:59), a time of day such as 07:30 (the next "
    "one, Chongqing time), or an ISO date or date-time (Chongqing time unless it has an offset; "
    "a date alone is midnight)"
)


def parse_start(value: str | None, now: datetime | None = None) -> datetime | None:
    """The street's start instant from `--start`: None for 'now' (the clock starts at the
    real clock's now when the street is online); see START_HELP for the forms. ValueError if
    none fits."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "now":
        return None
    now = now or datetime.now(UTC)
    here = now.astimezone(STREET_TZ)
    if text == "demo":
        t = here.time()
        if NIGHT_UNTIL <= t < NIGHT_FROM:
            return None
        return _next_local(here, LIVELY_AT)
    if len(text) <= 8 and ":" in text and "-" not in text:
        return _next_local(here, time_of_day.fromisoformat(text))
    at = datetime.fromisoformat(value.strip())
    return at if at.tzinfo is not None else at.replace(tzinfo=STREET_TZ)


def _next_local(here: datetime, at: time_of_day) -> datetime:
    """The next instant (after `here`, a Chongqing time) the Chongqing clock reads `at`."""
    day: date = here.date()
    target = datetime.combine(day, at, tzinfo=STREET_TZ)
    if target <= here:
        target += timedelta(days=1)
    return target.astimezone(UTC)


class SimClock:
    """Maps street instants to monotonic time; `speed=None` is the as-fast-as-possible clock."""

    def __init__(self, start: datetime | None = None, speed: float | None = 1.0) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._requested = start
        self.start = start or datetime.now(UTC)
        self.speed = speed
        self.paused = False
        self.version = 0
        self._anchor(self.start)

    def _anchor(self, street: datetime) -> None:
        self._mono0 = time.monotonic()
        self.wall0 = datetime.now(UTC)  # the same anchor on the wall clock (announcements)
        self._street0 = street
        self._virtual = street
        self.version += 1

    @property
    def max_speed(self) -> bool:
        return self.speed is None

    @property
    def street0(self) -> datetime:
        """The street instant of the anchor (at the wall instant `wall0`)."""
        return self._street0

    def begin(self) -> datetime:
        """Street time starts now (at the given start instant, or at the wall clock's now)."""
        self.start = self._requested or datetime.now(UTC)
        self._anchor(self.start)
        return self.start

    def now(self) -> datetime:
        if self.speed is None:
            return self._virtual
        if self.paused:
            return self._street0
        return self._street0 + timedelta(seconds=(time.monotonic() - self._mono0) * self.speed)

    def advance(self, sim: datetime) -> None:
        """At max speed: the street has reached `sim` (never moves backwards)."""
        if sim > self._virtual:
            self._virtual = sim

    def monotonic_at(self, sim: datetime) -> float:
        """The monotonic time at which the street instant `sim` is reached: now at max speed
        (as soon as the runner gets to it); paused, now up to the paused instant (the street
        catches up with its clock) and never (+inf) after it."""
        if self.speed is None:
            return time.monotonic()
        if self.paused:
            return time.monotonic() if sim <= self._street0 else math.inf
        return self._mono0 + (sim - self._street0).total_seconds() / self.speed

    # -- the operator's controls ---------------------------------------------------------------
    def pause(self) -> None:
        if not self.paused:
            self._anchor(self.now())
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._anchor(self._street0)

    def set_speed(self, speed: float | None) -> None:
        """A new pace from the street's current instant on (None: as fast as possible)."""
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        now = self.now()
        self.speed = speed
        if speed is None:
            self.paused = False  # "max" has no pause (contracts.clock.check refuses it)
        self._anchor(now)

    def jump(self, street: datetime) -> None:
        """The street has been simulated up to `street` (a jump): run on from there, at the same
        speed, paused if it was."""
        self._anchor(max(street, self.now()))
