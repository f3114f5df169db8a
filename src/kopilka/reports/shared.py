"""Pure helpers of the reports (no I/O): days, months and the control-group hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

BUCKETS = 10_000
_SALT = b"kopilka-control-group:"


def bucket_of(member_id: uuid.UUID) -> int:
    """A member's bucket, 0 … 9 999: the first 8 bytes of SHA-256 of a fixed salt and the
    member's id, modulo 10 000. Stable forever, independent of the database, and uniform."""
    digest = hashlib.sha256(_SALT + member_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def control_cut(share: Decimal) -> int:
    """Buckets below this number form the control group (``share`` has ≤ 4 places)."""
    return int(share * BUCKETS)


def in_control_group(member_id: uuid.UUID, share: Decimal) -> bool:
    """Whether a member belongs to the hold-out group of a programme that keeps ``share``
    of its members out (they earn nothing; reports compare them with the rest)."""
    return share > 0 and bucket_of(member_id) < control_cut(share)


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
