"""Pure helpers of the reports (no I/O): days and months. (The control group's hash lives
with the programme's ``control_group_share``: ``kopilka.spec.control_group``.)"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + y, m + 1, 1)


def months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def local_day_bounds(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a local day of ``tz`` starts and ends (ends exclusive)."""
    zone = zoneinfo.ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week."""
    return day - dt.timedelta(days=day.weekday())


def bucket_day(day: dt.date, grain: str) -> dt.date:
    if grain == "week":
        return week_start(day)
    if grain == "month":
        return first_of_month(day)
    return day


def as_date(value: Any) -> dt.date:
    """A day as the drivers return it (a date, a datetime, or ISO text on SQLite)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
