"""The street's calendar: which local days are workdays, rest days or public holidays.

Residents of Lijia Street live by China's official calendar, not by the weekday alone: public
holidays (National Day, the Spring Festival, ...) are days off whatever the weekday, and the
State Council's yearly schedule moves some weekend days to workdays (调休) to bridge a holiday.
The dates come from the `holidays` package (its China calendar): statutory holidays for every
year it supports, the adjusted working weekend days for the years whose schedule it lists.
Outside its years the street falls back to Monday-Friday workdays and Saturday-Sunday rest days.

Everything that depends on the kind of day asks here (devices/daily.py: the activity curves and
the school days), so the street's idea of a day off lives in one place.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from functools import lru_cache

from holidays import HolidayBase, country_holidays
from holidays.countries.china import China


class DayType(StrEnum):
    WORKDAY = "workday"  # Monday-Friday, or a weekend day made a workday (调休)
    REST_DAY = "rest-day"  # an ordinary Saturday or Sunday
    HOLIDAY = "holiday"  # a public holiday or a day off the holiday schedule gives


@lru_cache(maxsize=16)
def _china(year: int) -> HolidayBase | None:
    """The package's China calendar for one year (None outside the years it supports)."""
    if not China.start_year <= year <= China.end_year:
        return None
    return country_holidays("CN", years=year)


@lru_cache(maxsize=4096)
def day_type(day: date) -> DayType:
    """What kind of day `day` (a Chongqing calendar date) is on the street."""
    china = _china(day.year)
    if china is not None:
        if day in china:
            return DayType.HOLIDAY
        if day in china.weekend_workdays:
            return DayType.WORKDAY
    return DayType.REST_DAY if day.weekday() >= 5 else DayType.WORKDAY


def is_day_off(day: date) -> bool:
    """A rest day or a public holiday: the weekend's rhythm, schools closed."""
    return day_type(day) is not DayType.WORKDAY
