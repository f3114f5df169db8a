"""A board's periods, without I/O: the key of the period a moment falls in, in the
programme's time zone (``2026-12-07``, ISO weeks ``2026-W49`` from Monday 00:00,
``2026-12``, ``all``), and a period as the API is asked for it."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from kopilka.spec.leaderboards import Period

ALL = "all"
_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "day": (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "YYYY-MM-DD, e.g. 2026-12-07"),
    "week": (re.compile(r"^\d{4}-W\d{2}$"), "YYYY-Www, e.g. 2026-W49"),
    "month": (re.compile(r"^\d{4}-\d{2}$"), "YYYY-MM, e.g. 2026-12"),
    "all": (re.compile(r"^all$"), "all"),
}


def key_of(period: Period, at: dt.datetime, tz: str) -> str:
    """The key of the ``period`` that the moment ``at`` falls in, in the time zone ``tz``."""
    if period == "all":
        return ALL
    local = at.astimezone(zoneinfo.ZoneInfo(tz))
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def parse(period: Period, raw: str) -> str:
    """``raw`` as a key of a ``period`` board (``ValueError`` saying the form otherwise)."""
    pattern, form = _FORMS[period]
    if not pattern.match(raw):
        raise ValueError(f"a {period} board's period is {form}")
    try:
        bounds(period, raw, "UTC")
    except ValueError as exc:
        raise ValueError(f"no such {period}: {raw}") from exc
    return raw


def bounds(period: Period, key: str, tz: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The first moment of the period ``key`` and the first after it, in ``tz`` (None for
    ``all``)."""
    zone = zoneinfo.ZoneInfo(tz)
    if period == "all":
        return None
    if period == "day":
        start = dt.date.fromisoformat(key)
        end = start + dt.timedelta(days=1)
    elif period == "week":
        year, week = int(key[:4]), int(key[6:])
        start = dt.date.fromisocalendar(year, week, 1)
        end = start + dt.timedelta(days=7)
    else:
        year, month = int(key[:4]), int(key[5:])
        start = dt.date(year, month, 1)
        end = dt.date(year + month // 12, month % 12 + 1, 1)
    return (
        dt.datetime.combine(start, dt.time(), zone),
        dt.datetime.combine(end, dt.time(), zone),
    )
