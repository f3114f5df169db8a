"""Exact splitting of amounts across receipt lines (pure; no I/O).

Every split here returns parts that add up to the whole exactly, so per-line figures always
sum to the receipt's totals (contract invariant 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal

from kopilka.core.money import ZERO, quantum, round_half_up


def allocate(total: Decimal, weights: Sequence[Decimal], precision: int) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` at ``precision`` decimal places by the
    largest-remainder rule: each part is first rounded down, then the units left over go
    one by one to the parts with the largest remainders (ties: the earlier line). Parts
    never exceed their weight's share rounded up by one unit, and sum to ``total``."""
    n = len(weights)
    if n == 0:
        if total != 0:
            raise ValueError("nothing to allocate to")
        return []
    weight_sum = sum(weights, ZERO)
    if total == 0 or weight_sum == 0:
        if total != 0:
            raise ValueError("cannot allocate a non-zero total over zero weights")
        return [ZERO] * n
    fast = _allocate_in_integers(total, weights, precision)
    if fast is not None:
        return fast
    q = quantum(precision)
    exact = [total * w / weight_sum for w in weights]
    parts = [e.quantize(q, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts, ZERO)) / q)
    order = sorted(range(n), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += q
    return parts


_WEIGHT_SCALE = 10**8


def _allocate_in_integers(
    total: Decimal, weights: Sequence[Decimal], precision: int
) -> list[Decimal] | None:
    """The same split as ``allocate`` in integer arithmetic (several times faster than
    Decimal division, and this runs for every rule on every receipt), or None when the
    amounts do not fit it exactly (negative, or finer than the scale)."""
    units_d = total.scaleb(precision)
    units = int(units_d)
    if units != units_d or units < 0:
        return None
    iw = []
    for w in weights:
        x = w * _WEIGHT_SCALE
        xi = int(x)
        if xi != x or xi < 0:
            return None
        iw.append(xi)
    whole = sum(iw)
    floors = [units * w // whole for w in iw]
    left = units - sum(floors)
    if left:
        rems = [units * w % whole for w in iw]
        for i in sorted(range(len(iw)), key=lambda i: (-rems[i], i))[:left]:
            floors[i] += 1
    return [Decimal(f).scaleb(-precision) for f in floors]


def prorate(full: Decimal, part: Decimal, whole: Decimal, precision: int) -> Decimal:
    """The share of ``full`` for ``part`` of ``whole`` units, half up; exactly ``full`` when
    ``part == whole``. Used cumulatively (returned so far, including this return), so that
    returning everything in any number of pieces gives back exactly ``full``."""
    if whole == 0 or part == whole:
        return full
    if part == 0:
        return ZERO
    return round_half_up(full * part / whole, precision)
