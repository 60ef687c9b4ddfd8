"""Days that differ (issue 13, item 7), purely: the street day enters every random stream, and
China's calendar (devices/calendar.py) decides which days are workdays, rest days and holidays."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from adapters.fleet import DEFAULT_FLEET, load_fleet
from contracts.topics import Channel
from contracts.vocabulary import STREET_TZ
from devices import daily
from devices.calendar import DayType, day_type, is_day_off
from devices.street import Street

Key = tuple[str, str, str, str]  # device, local time of day to the minute, type, payload


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=STREET_TZ)


def street_events(
    start: datetime, hours: float, only: set[str] | None = None
) -> list[tuple[str, str, datetime, Any]]:
    """(device id, kind, instant, emission) of everything the default street publishes."""
    street = Street(load_fleet(DEFAULT_FLEET), only=only)
    street.start(start)
    return [
        (street.specs[i].id, street.specs[i].kind, ts, e)
        for i, ts, e in street.run(start + timedelta(hours=hours))
    ]


def day_keys(steps: list[tuple[str, str, datetime, Any]], day: date) -> list[Key]:
    out = []
    for device, _, ts, e in steps:
        here = daily.local(ts)
        if e.channel == Channel.EVENTS and here.date() == day:
            payload = json.dumps(e.data.model_dump(mode="json"), sort_keys=True)
            out.append((device, here.strftime("%H:%M"), e.type, payload))
    return out


def repeated(first: list[Key], second: list[Key]) -> float:
    """The share of `second`'s events that `first` already had (as a multiset)."""
    left = Counter(first)
    shared = sum((Counter(second) & left).values())
    return shared / len(second)


TUESDAY, WEDNESDAY = date(2026, 12, 8), date(2026, 12, 9)
# Chance level: in one run the second day's draws follow the first day's, so what they share is
# coincidence, mostly school arrivals (each pupil arrives once a day in a 45-minute window, so
# the same pupil in the same minute on two days is about a 1-in-40 chance). Measured with the
# default fleet: 0.18 % of Wednesday's events repeat Tuesday's in one run. Before the street
# day entered the streams, a fresh start on Wednesday replayed a fresh start on Tuesday: 95 %.
CHANCE_BOUND = 0.01


@pytest.fixture(scope="module")
def from_tuesday() -> list[tuple[str, str, datetime, Any]]:
    return street_events(midnight(TUESDAY), 48)


def test_consecutive_weekdays_of_one_run_share_only_chance_events(from_tuesday: Any) -> None:
    tuesday, wednesday = day_keys(from_tuesday, TUESDAY), day_keys(from_tuesday, WEDNESDAY)
    assert len(tuesday) > 10_000 and len(wednesday) > 10_000
    assert repeated(tuesday, wednesday) < CHANCE_BOUND


def test_a_fresh_start_the_next_day_does_not_replay_the_day_before(from_tuesday: Any) -> None:
    tuesday = day_keys(from_tuesday, TUESDAY)
    wednesday = day_keys(street_events(midnight(WEDNESDAY), 24), WEDNESDAY)
    assert len(wednesday) > 10_000
    assert repeated(tuesday, wednesday) < CHANCE_BOUND


def test_the_same_seed_and_start_reproduce_exactly_across_midnight() -> None:
    start = datetime.combine(TUESDAY, time(20, 0), tzinfo=STREET_TZ)  # over Wednesday's midnight

    def fingerprint() -> list[tuple[Any, ...]]:
        return [
            (device, ts, e.type, e.correlation_id, e.data.model_dump())
            for device, _, ts, e in street_events(start, 8)
        ]

    first = fingerprint()
    assert len(first) > 1000 and any(daily.local(ts).date() == WEDNESDAY for _, ts, *_ in first)
    assert first == fingerprint()


def test_the_calendar_knows_holidays_rest_days_and_adjusted_workdays() -> None:
    assert day_type(date(2026, 12, 8)) is DayType.WORKDAY  # a Tuesday
    assert day_type(date(2026, 12, 12)) is DayType.REST_DAY  # a Saturday
    assert day_type(date(2026, 10, 1)) is DayType.HOLIDAY  # National Day, a Thursday
    assert day_type(date(2026, 10, 7)) is DayType.HOLIDAY  # the holiday week's last day off
    assert day_type(date(2026, 10, 10)) is DayType.WORKDAY  # a Saturday worked (调休)
    assert day_type(date(2027, 1, 1)) is DayType.HOLIDAY  # New Year's Day, a Friday
    # Outside the package's years: Monday to Friday work, the weekend rests.
    for day in (date(2101, 1, 3), date(2101, 1, 4), date(1949, 10, 1)):
        assert is_day_off(day) == (day.weekday() >= 5)


# One street day from midnight: a Tuesday, a Saturday, National Day (a Thursday), a worked
# Saturday (调休) and New Year's Day 2027 (a Friday); gates and schools only, for speed.
DAYS = {
    "weekday": date(2026, 12, 8),
    "saturday": date(2026, 12, 12),
    "national-day": date(2026, 10, 1),
    "worked-saturday": date(2026, 10, 10),
    "new-year": date(2027, 1, 1),
}


@pytest.fixture(scope="module")
def days() -> dict[str, tuple[int, int]]:
    """Per day: the schools' events, and the gates' arrivals between 07:00 and 09:00."""
    fleet = load_fleet(DEFAULT_FLEET)
    only = {d.id for d in fleet.devices if d.kind in ("gate", "school")}
    out = {}
    for name, day in DAYS.items():
        school = rush = 0
        for _, kind, ts, e in street_events(midnight(day), 24, only):
            if e.channel != Channel.EVENTS:
                continue
            if kind == "school":
                school += 1
            elif e.type in ("entry-granted", "entry-denied") and 7 <= daily.local(ts).hour < 9:
                rush += 1
        out[name] = (school, rush)
    return out


def test_schools_are_closed_on_rest_days_and_holidays_and_open_on_worked_weekends(
    days: dict[str, tuple[int, int]],
) -> None:
    assert days["weekday"][0] > 1000  # two schools' arrivals, visitors and pick-ups
    assert days["saturday"][0] == days["national-day"][0] == days["new-year"][0] == 0
    assert days["worked-saturday"][0] > 1000


def test_gates_follow_the_weekend_curve_on_holidays_and_the_weekday_one_on_worked_weekends(
    days: dict[str, tuple[int, int]],
) -> None:
    # The curves (devices/daily.py, GATE) put 5.4 weekday units into 07:00-09:00 against 1.8
    # on a day off: a factor of 3, thousands of arrivals, far beyond chance either way.
    weekday, saturday = days["weekday"][1], days["saturday"][1]
    assert weekday > 2 * saturday
    for holiday in ("national-day", "new-year"):
        assert 0.75 * saturday < days[holiday][1] < 1.33 * saturday
    assert 0.75 * weekday < days["worked-saturday"][1] < 1.33 * weekday
