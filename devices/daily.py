"""What a day on Lijia Street looks like per kind: activity curves and windows, Chongqing time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from contracts.vocabulary import STREET_TZ
from devices.calendar import is_day_off

CHINA = STREET_TZ.utcoffset(None)  # the offset alone, for arithmetic on UTC times
# A wake-up "never" that still compares with aware datetimes and leaves room for arithmetic.
NEVER = timedelta(days=3650)


def local(now: datetime) -> datetime:
    """The Chongqing wall clock at the instant `now` (which is aware, usually UTC)."""
    return now.astimezone(STREET_TZ)


def local_date(now: datetime) -> date:
    return local(now).date()


def is_weekend(now: datetime) -> bool:
    return local(now).weekday() >= 5


def day_off(now: datetime) -> bool:
    """A rest day or public holiday in Chongqing at `now` (devices/calendar.py); an adjusted
    working weekend day is not one."""
    return is_day_off(local_date(now))


def next_local(now: datetime, at: time) -> datetime:
    """The first instant strictly after `now` at which the Chongqing clock reads `at`."""
    here = local(now)
    candidate = datetime.combine(here.date(), at, tzinfo=STREET_TZ)
    if candidate <= here:
        candidate += timedelta(days=1)
    return candidate.astimezone(now.tzinfo)


def hour_end(now: datetime) -> datetime:
    # China has no half-hour offset, so a UTC hour boundary is also a local one.
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A daily stretch of local time [start, end); it may wrap past midnight (quiet hours)."""

    start: time
    end: time

    def contains(self, now: datetime) -> bool:
        t = local(now).time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def seconds(self) -> float:
        start = self.start.hour * 3600 + self.start.minute * 60
        end = self.end.hour * 3600 + self.end.minute * 60
        return float((end - start) % 86_400)


@dataclass(frozen=True)
class DayCurve:
    """Relative activity per local hour, on workdays and on days off.

    "weekday" is the workday curve, "weekend" the curve of rest days and public holidays (the
    street's calendar, devices/calendar.py, says which a day is: an adjusted working Saturday
    takes the weekday curve). Both are divided by the weekday mean, so a rate `x per hour` means
    x on an average weekday hour, and a busier weekend stays busier.
    """

    weekday: tuple[float, ...]
    weekend: tuple[float, ...] | None = None
    _wd: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _we: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weekend = self.weekend if self.weekend is not None else self.weekday
        if len(self.weekday) != 24 or len(weekend) != 24:
            raise ValueError("a day curve has 24 hourly values")
        mean = sum(self.weekday) / 24
        object.__setattr__(self, "_wd", tuple(v / mean for v in self.weekday))
        object.__setattr__(self, "_we", tuple(v / mean for v in weekend))

    def at(self, now: datetime) -> float:
        here = local(now)
        return (self._we if is_day_off(here.date()) else self._wd)[here.hour]


# fmt: off
# Gates: thin night, morning rush out, evening rush in.
GATE = DayCurve(
    (0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.9, 2.6, 2.8, 1.2, 0.8, 0.9,
     1.1, 0.9, 0.8, 0.9, 1.1, 2.2, 2.6, 2.0, 1.3, 0.8, 0.4, 0.2),
    (0.15, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.7, 1.1, 1.5, 1.6, 1.4,
     1.3, 1.2, 1.3, 1.4, 1.5, 1.7, 1.9, 1.7, 1.3, 0.9, 0.5, 0.3),
)

# Medicine cabinets (24 h): steady daytime demand, a little after work, almost none at night.
MEDICINE = DayCurve(
    (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.3, 1.5, 1.5, 1.4,
     1.2, 1.2, 1.4, 1.5, 1.5, 1.6, 1.7, 1.6, 1.4, 1.0, 0.5, 0.2),
)

# Book houses: after school (16-18 h) and evening (19-21 h) peaks; weekends busy all day.
BOOK_HOUSE = DayCurve(
    (0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.7,
     0.8, 0.7, 0.7, 0.9, 2.2, 2.6, 1.6, 2.4, 2.6, 1.8, 0.6, 0.1),
    (0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.4, 1.2, 2.2, 2.6, 2.3,
     1.8, 2.0, 2.6, 2.8, 2.8, 2.5, 1.9, 2.4, 2.5, 1.8, 0.7, 0.2),
)

# 24-hour service centre: queues at lunch (11:30-13:30) and after work (17-19 h).
SERVICE_CENTRE = DayCurve(
    (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 1.0, 1.3, 1.4, 2.0,
     2.6, 1.8, 1.2, 1.1, 1.2, 2.2, 2.6, 1.9, 1.2, 0.8, 0.4, 0.2),
    (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 1.4, 1.5,
     1.5, 1.3, 1.2, 1.2, 1.2, 1.1, 1.0, 0.8, 0.6, 0.4, 0.2, 0.1),
)

# Leisure-area stereo: morning exercise, then evening square dancing and chatting; late
# sessions after 22 h are what the quiet hours are for.
STEREO = DayCurve(
    (0.05, 0.0, 0.0, 0.0, 0.0, 0.1, 0.9, 1.0, 0.5, 0.3, 0.3, 0.2,
     0.2, 0.2, 0.3, 0.4, 0.6, 0.9, 2.0, 4.0, 4.5, 3.5, 1.0, 0.3),
    (0.1, 0.0, 0.0, 0.0, 0.0, 0.1, 1.0, 1.2, 0.9, 0.8, 0.8, 0.5,
     0.4, 0.4, 0.6, 0.8, 1.0, 1.3, 2.4, 4.4, 4.8, 3.8, 1.3, 0.4),
)

# Property app, per request category: repairs in the morning and after work, cleaning by day,
# noise complaints late in the evening, parking when people come home, security around the clock.
PROPERTY: dict[str, DayCurve] = {
    "repair": DayCurve(
        (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.4, 1.2, 1.8, 1.8, 1.5, 1.2,
         1.0, 1.1, 1.2, 1.3, 1.3, 1.4, 1.9, 2.2, 2.0, 1.3, 0.6, 0.2),
        (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.0, 2.0, 1.6,
         1.2, 1.3, 1.6, 1.6, 1.5, 1.4, 1.6, 1.8, 1.6, 1.1, 0.5, 0.2),
    ),
    "cleaning": DayCurve(
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.4, 1.2, 2.0, 2.2, 2.0, 1.6,
         1.2, 1.4, 1.6, 1.6, 1.4, 1.3, 1.5, 1.5, 1.2, 0.6, 0.2, 0.0),
    ),
    "noise": DayCurve(
        (1.6, 0.9, 0.4, 0.2, 0.1, 0.1, 0.2, 0.6, 0.5, 0.4, 0.4, 0.5,
         0.7, 0.6, 0.4, 0.4, 0.4, 0.5, 0.8, 1.5, 2.5, 3.8, 4.2, 3.0),
    ),
    "security": DayCurve(
        (0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3, 1.4, 1.4, 1.3, 1.2, 1.0),
    ),
    "parking": DayCurve(
        (0.4, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.6, 1.4, 0.6, 0.4, 0.4,
         0.5, 0.5, 0.5, 0.6, 0.8, 1.4, 2.4, 2.8, 2.6, 1.8, 1.2, 0.7),
    ),
}
# Share of each category in a day's requests (repairs dominate property work).
PROPERTY_MIX: dict[str, float] = {
    "repair": 0.45, "cleaning": 0.2, "noise": 0.12, "security": 0.08, "parking": 0.15,
}
# fmt: on
# All requests together: the app's own daily shape.
PROPERTY_ALL = DayCurve(
    tuple(sum(PROPERTY_MIX[c] * PROPERTY[c]._wd[h] for c in PROPERTY) for h in range(24)),
    tuple(sum(PROPERTY_MIX[c] * PROPERTY[c]._we[h] for c in PROPERTY) for h in range(24)),
)


# Linked journeys (a resident comes in through a gate, then the book house, the medicine cabinet,
# and files a request from home): errands on the way home after work, spread over the day at
# weekends, nobody at night.
# fmt: off
JOURNEY = DayCurve(
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.4, 0.6, 0.8, 0.9,
     1.0, 0.9, 0.8, 0.9, 1.4, 2.4, 2.8, 2.6, 1.8, 0.9, 0.3, 0.0),
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.8, 1.4, 1.8, 1.6,
     1.3, 1.4, 1.8, 2.0, 2.0, 1.9, 1.8, 1.6, 1.2, 0.7, 0.2, 0.0),
)
# fmt: on


def property_mix(now: datetime) -> list[float]:
    """Weights of the request categories (in PROPERTY order) at this hour."""
    return [PROPERTY_MIX[c] * curve.at(now) for c, curve in PROPERTY.items()]


# Schools: workdays only (closed on rest days and public holidays), fixed windows.
SCHOOL_ARRIVALS = Window(time(7, 30), time(8, 15))
SCHOOL_DAY = Window(time(8, 15), time(16, 30))
SCHOOL_PICKUPS = Window(time(16, 30), time(17, 30))

# Quiet hours in residential areas (the stereo's default; an operator may change them).
QUIET_HOURS = Window(time(22, 0), time(7, 0))

# Chongqing monthly mean air temperature (°C) and the day's swing around it: a lobby is close
# to outdoor air, which is what a failed cooler or an open door lets in.
MONTHLY_MEAN_C = (7.9, 10.3, 14.2, 19.0, 22.9, 25.4, 28.5, 28.6, 24.4, 19.0, 14.2, 9.6)
# fmt: off
_DIURNAL_C = (-2.5, -3.0, -3.4, -3.7, -3.9, -4.0, -3.6, -2.6, -1.2, 0.3, 1.6, 2.6,
              3.3, 3.7, 3.8, 3.5, 2.9, 2.0, 1.0, 0.2, -0.6, -1.2, -1.7, -2.1)
# fmt: on


def ambient_c(now: datetime) -> float:
    here = local(now)
    return MONTHLY_MEAN_C[here.month - 1] + _DIURNAL_C[here.hour]


def gap(rng: random.Random, per_hour: float) -> timedelta:
    """Time to the next event of a steady Poisson process (faults, repairs); never if rate 0."""
    if per_hour <= 0:
        return NEVER
    return timedelta(seconds=rng.expovariate(per_hour / 3600))


class Arrivals:
    """A Poisson process whose rate follows a day curve.

    The curve is constant within a local hour, so a gap that would cross the hour's end is cut
    there and drawn afresh (exact, by memorylessness): a quiet hour never hides the next rush.
    `boost` multiplies the rate (a flu wave) from the next draw on; a drill's load change sets
    `load` (another factor) or `fixed` (a rate per hour whatever the hour).
    """

    __slots__ = ("_real", "boost", "curve", "due", "fixed", "load", "per_hour", "rng")

    def __init__(self, rng: random.Random, per_hour: float, curve: DayCurve, now: datetime) -> None:
        self.rng = rng
        self.per_hour = per_hour
        self.curve = curve
        self.boost = 1.0
        self.load = 1.0
        self.fixed: float | None = None
        self.due = now
        self._real = False
        self.plan(now)

    def plan(self, now: datetime) -> None:
        end = hour_end(now)
        if self.fixed is not None:
            rate = self.fixed
        else:
            rate = self.per_hour * self.boost * self.load * self.curve.at(now)
        if rate > 0:
            at = now + timedelta(seconds=self.rng.expovariate(rate / 3600))
            if at < end:
                self.due, self._real = at, True
                return
        self.due, self._real = end, False

    def fire(self, now: datetime) -> bool:
        """Call once `now` reaches `due`: True if someone arrived (not just an hour boundary)."""
        real = self._real
        self.plan(now)
        return real
