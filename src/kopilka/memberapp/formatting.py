"""Money, points, dates and times written the member's way (Babel, CLDR data).

Pure functions: amounts are ``Decimal`` and keep the currency's precision exactly
(rounding is the caller's business, never done here); moments are shown in the
programme's time zone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal, get_currency_symbol

from kopilka.core.money import plain
from kopilka.memberapp.lang import LANGS

MINUS = "\u2212"  # a real minus sign: screen readers say "minus", not "dash"


def _locale(lang: str) -> str:
    return lang if lang in LANGS else "en"


def points(amount: Decimal, precision: int, lang: str, *, signed: bool = False) -> str:
    """An amount of a loyalty currency with exactly ``precision`` places ("1 234,50")."""
    pattern = "#,##0" + ("." + "0" * precision if precision > 0 else "")
    text = format_decimal(abs(amount), format=pattern, locale=_locale(lang))
    if amount < 0:
        return MINUS + text
    if signed and amount > 0:
        return "+" + text
    return text


def quantity(value: Decimal, lang: str) -> str:
    """A receipt line's quantity with the places it has and no more ("20", "2,5",
    "1 000"), never in exponent notation."""
    places = len(plain(value).partition(".")[2])
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(value, format=pattern, locale=_locale(lang))


def money(amount: Decimal, currency: str, lang: str) -> str:
    """Money in the programme's base currency ("1 234,50 ₽", "RUB 1,234.50").

    CLDR's currency spacing: a symbol made of letters ("RUB" in English) is kept apart from
    the digits by a no-break space; Babel leaves that rule to its caller."""
    text = format_currency(abs(amount), currency, locale=_locale(lang))
    symbol = get_currency_symbol(currency, locale=_locale(lang))
    if (
        symbol[-1:].isalpha()
        and text.startswith(symbol)
        and text[len(symbol) : len(symbol) + 1].isdigit()
    ):
        text = f"{symbol}\xa0{text[len(symbol) :]}"
    elif (
        symbol[:1].isalpha()
        and text.endswith(symbol)
        and text[-len(symbol) - 1 : -len(symbol)].isdigit()
    ):
        text = f"{text[: -len(symbol)]}\xa0{symbol}"
    return (MINUS + text) if amount < 0 else text


def _local(moment: dt.datetime, tz: str) -> dt.datetime:
    return moment.astimezone(zoneinfo.ZoneInfo(tz))


def moment(value: dt.datetime, tz: str, lang: str) -> str:
    """A date and time ("24 нояб. 2026 г., 13:05", "Nov 24, 2026, 1:05 PM")."""
    local = _local(value, tz)
    day = format_date(local, "medium", locale=_locale(lang))
    return f"{day}, {format_time(local, 'short', locale=_locale(lang))}"


def day(value: dt.datetime | dt.date, tz: str, lang: str) -> str:
    """A date alone ("24 нояб. 2026 г.")."""
    if isinstance(value, dt.datetime):
        value = _local(value, tz)
    return format_date(value, "medium", locale=_locale(lang))


def time_of_day(value: dt.datetime, tz: str, lang: str) -> str:
    """A time alone ("13:05", "1:05 PM")."""
    return format_time(_local(value, tz), "short", locale=_locale(lang))


def as_of(value: dt.datetime, tz: str, lang: str, today: dt.datetime) -> str:
    """When data was read: the time alone if it was today, else date and time."""
    if _local(value, tz).date() == _local(today, tz).date():
        return time_of_day(value, tz, lang)
    return moment(value, tz, lang)


# --- challenges ---


def time_left(delta: dt.timedelta, lang: str) -> str:
    """How long is left, roughly, in words ("3 days", "3 дня", "5 hours")."""
    return format_timedelta(delta, threshold=1.5, locale=_locale(lang))
