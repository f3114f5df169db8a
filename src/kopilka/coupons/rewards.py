"""What a coupon gives on a receipt (pure; no I/O).

Coupons act after the rules engine: ``left[i]`` is the money still on line i after the
rules' discounts and the coupons applied before this one. Money is rounded to 0.01, points
to their currency's precision; every split across lines adds up to the whole exactly, and
no line is ever discounted below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from kopilka.core.money import ZERO, quantum, round_down

MONEY_PRECISION = 2
HUNDRED = Decimal(100)

REWARD_KINDS = ("percent", "fixed", "points", "multiplier", "free_product")


@dataclass(frozen=True)
class Line:
    sku: str
    category: str | None
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class Reward:
    kind: str  # one of REWARD_KINDS
    value: Decimal | None = None  # percent, money, points or factor
    currency: str | None = None  # points and multiplier
    max_discount: Decimal | None = None  # percent: a cap in money
    skus: frozenset[str] = frozenset()  # matching lines (both empty: every line)
    categories: frozenset[str] = frozenset()
    free_sku: str | None = None
    free_quantity: Decimal | None = None


@dataclass
class Effect:
    discounts: list[Decimal]  # money per line
    points: dict[str, list[Decimal]] = field(default_factory=dict)
    multipliers: dict[str, Decimal] = field(default_factory=dict)
    free_lines: list[int] = field(default_factory=list)  # 0-based

    @property
    def discount(self) -> Decimal:
        return sum(self.discounts, ZERO)

    @property
    def empty(self) -> bool:
        return (
            self.discount == 0
            and not any(sum(v, ZERO) > 0 for v in self.points.values())
            and not self.multipliers
        )


def allocate(total: Decimal, weights: Sequence[Decimal], precision: int) -> list[Decimal]:
    """``total`` split in proportion to ``weights`` at ``precision`` places, exactly, by
    the largest remainder (ties to the earlier line). When ``total`` is at most the sum of
    the weights and the weights are at that precision, no part exceeds its weight."""
    n = len(weights)
    weight_sum = sum(weights, ZERO)
    if total == 0 or weight_sum == 0:
        return [ZERO] * n
    q = quantum(precision)
    exact = [total * w / weight_sum for w in weights]
    parts = [e.quantize(q, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts, ZERO)) / q)
    order = sorted(range(n), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += q
    return parts


def matching(reward: Reward, lines: Sequence[Line]) -> list[int]:
    """Indexes of the lines the reward applies to."""
    if not reward.skus and not reward.categories:
        return list(range(len(lines)))
    return [
        i
        for i, ln in enumerate(lines)
        if ln.sku in reward.skus or (ln.category is not None and ln.category in reward.categories)
    ]


def apply(
    reward: Reward, lines: Sequence[Line], left: Sequence[Decimal], precisions: dict[str, int]
) -> Effect:
    """The effect of one coupon on lines with ``left`` money still on them. An effect that
    gives nothing (no matching line, nothing left to discount) means "not applicable"."""
    n = len(lines)
    effect = Effect(discounts=[ZERO] * n)
    if reward.kind == "free_product":
        return _free_product(reward, lines, left, effect)
    idx = [i for i in matching(reward, lines) if left[i] > 0]
    if not idx:
        return effect
    weights = [left[i] for i in idx]
    base = sum(weights, ZERO)
    if reward.kind in ("percent", "fixed"):
        assert reward.value is not None
        if reward.kind == "percent":
            total = round_down(base * reward.value / HUNDRED, MONEY_PRECISION)
            if reward.max_discount is not None:
                total = min(total, reward.max_discount)
        else:
            total = min(reward.value, base)
        for i, part in zip(idx, allocate(total, weights, MONEY_PRECISION), strict=True):
            effect.discounts[i] = min(part, left[i])
    elif reward.kind == "points":
        assert reward.value is not None and reward.currency is not None
        per_line = [ZERO] * n
        parts = allocate(reward.value, weights, precisions.get(reward.currency, 2))
        for i, part in zip(idx, parts, strict=True):
            per_line[i] = part
        effect.points[reward.currency] = per_line
    elif reward.kind == "multiplier":
        assert reward.value is not None and reward.currency is not None
        effect.multipliers[reward.currency] = reward.value
    else:  # pragma: no cover - the schema allows only the kinds above
        raise ValueError(f"unknown reward kind {reward.kind!r}")
    return effect


def _free_product(
    reward: Reward, lines: Sequence[Line], left: Sequence[Decimal], effect: Effect
) -> Effect:
    """The named product free, up to ``free_quantity`` units, on the first lines that carry
    it (a line already discounted gives at most what is left on it)."""
    assert reward.free_sku is not None
    wanted = reward.free_quantity or Decimal(1)
    for i, ln in enumerate(lines):
        if wanted <= 0:
            break
        if ln.sku != reward.free_sku or left[i] <= 0:
            continue
        units = min(wanted, ln.quantity)
        value = left[i]
        if units < ln.quantity:
            part = (units * ln.unit_price).quantize(quantum(MONEY_PRECISION), ROUND_DOWN)
            value = min(part, value)
        if value > 0:
            effect.discounts[i] = value
            effect.free_lines.append(i)
            wanted -= units
    return effect
