"""Dates and timestamps from outside, and local days that never overflow.

Python's calendar ends at 0001-01-01 and 9999-12-31, and a moment near either end cannot
even be moved to another time zone. Kopilka does date arithmetic on what clients send (a
lot's expiry up to 100 years on, a tier's window a year back, a campaign's local day), so
every timestamp and date a client sends must lie between ``EARLIEST`` and ``LATEST``: the
types ``Timestamp`` and ``Day`` refuse anything else with a 422 naming the field. Whether a
receipt's moment is *plausible* (recent enough, not ahead of the clock) is the programme's
setting, decided by ``kopilka.program.service.check_occurred_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
FIRST_DAY = EARLIEST.date()
LAST_DAY = LATEST.date()
RANGE = f"between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"


def timestamp_error(value: dt.datetime) -> tuple[str, str] | None:
    """``(code, message)`` saying why a client's timestamp is refused, or None."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "naive_datetime", "give a time zone offset (RFC 3339)"
    # Comparing aware datetimes subtracts their offsets without building a new datetime,
    # so this holds even for 0001-01-01T00:00+14:00, whose UTC moment is in year 0.
    if not EARLIEST <= value <= LATEST:
        return "out_of_range", f"must be {RANGE}"
    return None


def day_error(value: dt.date) -> tuple[str, str] | None:
    """``(code, message)`` saying why a client's date is refused, or None."""
    if not FIRST_DAY <= value <= LAST_DAY:
        return "out_of_range", f"must be {RANGE}"
    return None


def _timestamp(value: dt.datetime) -> dt.datetime:
    error = timestamp_error(value)
    if error is not None:
        raise PydanticCustomError(*error)
    return value


def _day(value: dt.date) -> dt.date:
    error = day_error(value)
    if error is not None:
        raise PydanticCustomError(*error)
    return value


# A timestamp a client sends: RFC 3339 with an offset, between EARLIEST and LATEST.
Timestamp = Annotated[dt.datetime, AfterValidator(_timestamp)]
# A calendar date a client sends, between FIRST_DAY and LAST_DAY.
Day = Annotated[dt.date, AfterValidator(_day)]


def in_zone(at: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """``at`` as a local time of ``zone``. A moment whose local time falls off either end
    of the calendar (within a day of 0001-01-01 or 9999-12-31) is given the calendar's
    first or last moment: the nearest local time there is, instead of an OverflowError."""
    try:
        return at.astimezone(zone)
    except OverflowError:
        if at.year > dt.MINYEAR:
            return dt.datetime.max.replace(tzinfo=zone)
        return dt.datetime.min.replace(tzinfo=zone)


def local_day(at: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The calendar day of ``at`` in ``zone`` (see ``in_zone`` for the calendar's ends)."""
    return in_zone(at, zone).date()
