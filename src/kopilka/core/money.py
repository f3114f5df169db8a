"""Exact amounts of money and points.

Amounts are ``Decimal`` in Python. In the database they are stored as integers of
1/10 000 (``SCALE``): SQLite has no exact decimal type and integer sums are exact and fast
on both databases. A currency's precision may therefore be at most ``MAX_PRECISION``.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

MAX_PRECISION = 4
SCALE: int = 10_000  # 10 ** MAX_PRECISION
ZERO = Decimal(0)
# The largest magnitude any amount may have: far above any receipt or balance, and safely
# inside a signed 64-bit integer of 1/SCALE. A wallet's balance stays below it too
# (``kopilka.ledger.planner.check_room``), so no sum the ledger keeps can overflow.
MAX_AMOUNT = Decimal(10) ** 13
# What a BIGINT column holds: the stored range of every ``Amount``, in units of 1/SCALE.
MAX_UNITS = 2**63 - 1


class AmountError(ValueError):
    """An amount that cannot be represented exactly."""


_QUANTA = {p: Decimal(1).scaleb(-p) for p in range(MAX_PRECISION + 3)}


def quantum(precision: int) -> Decimal:
    hit = _QUANTA.get(precision)
    return hit if hit is not None else Decimal(1).scaleb(-precision)


def to_decimal(value: str | int | Decimal) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise AmountError(f"not a decimal number: {value!r}") from exc
    if not d.is_finite():
        raise AmountError(f"not a finite number: {value!r}")
    if abs(d) >= MAX_AMOUNT:
        raise AmountError(f"{value} is out of range (at most 13 digits before the point)")
    return d


def fits_precision(value: Decimal, precision: int) -> bool:
    return value == value.quantize(quantum(precision), rounding=ROUND_DOWN)


def round_down(value: Decimal, precision: int) -> Decimal:
    """Round toward zero to the precision (used for earning: never give more than earned)."""
    return value.quantize(quantum(precision), rounding=ROUND_DOWN)


def round_half_up(value: Decimal, precision: int) -> Decimal:
    return value.quantize(quantum(precision), rounding=ROUND_HALF_UP)


def to_units(value: Decimal) -> int:
    """Decimal → integer of 1/SCALE. Refuses anything finer than MAX_PRECISION places."""
    if isinstance(value, int):  # a literal 0 in a comparison, say
        value = Decimal(value)
    scaled = value * SCALE
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{value} has more than {MAX_PRECISION} decimal places")
    units = int(scaled)
    if abs(units) > MAX_UNITS:  # a BIGINT would overflow (a 500 on PostgreSQL)
        raise AmountError(f"{value} is out of range")
    return units


def from_units(units: int, precision: int = MAX_PRECISION) -> Decimal:
    return (Decimal(units) / SCALE).quantize(quantum(precision))


def plain(value: Decimal) -> str:
    """A quantity, percent or factor for people and the API: a plain decimal without
    trailing zeros, never in exponent notation (``"10"``, ``"2.5"``; ``str()`` of
    ``Decimal("10").normalize()`` is ``"1E+1"``). Exact: no rounding to a context."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt(value: Decimal, precision: int) -> str:
    """The canonical string of an amount for the API: exactly ``precision`` places."""
    return str(value.quantize(quantum(precision)))
