"""The rules engine: a pure function from a receipt and a member's context to effects.

No I/O here. The purchases service builds a ``ReceiptContext``, asks ``price`` for the
discounts and redemption limits, splits the redemption itself, then asks ``earn`` for the
points earned on the money actually paid, per line.

Two phases, because earning depends on what is paid, which depends on the discounts and
the points redeemed:

1. ``price(rules, ctx) -> Pricing``: per-line money discounts, redemption caps per currency,
   lines excluded from redemption or from earning.
2. ``earn(rules, ctx, pricing, paid) -> Earning``: per currency, per line, the points
   earned on ``paid[i]`` (money paid for line i after discounts and redemption), rounded
   down to the currency's precision.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from kopilka.core.money import ZERO, round_down
from kopilka.program.schema import ProgramSpec
from kopilka.rules.schema import RuleSpec, parse_rules

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineIn:
    line_no: int  # 1-based, in the order sent
    sku: str
    name: str | None
    category: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # quantity × unit price, rounded half up to the base currency


@dataclass(frozen=True)
class MemberContext:
    id: uuid.UUID
    tier: str | None = None
    tags: frozenset[str] = frozenset()
    birth_date: dt.date | None = None
    joined_at: dt.datetime | None = None
    purchases_count: int = 0


@dataclass(frozen=True)
class ReceiptContext:
    store: str
    partner: str | None
    channel: str  # pos | online | app
    occurred_at: dt.datetime  # aware
    timezone: str  # the programme's
    lines: tuple[LineIn, ...]
    member: MemberContext | None
    coupons: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppliedRule:
    name: str
    effect: str  # "earn" | "discount" | "redeem_cap" | …
    reason: str
    currency: str | None = None
    amount: Decimal | None = None


@dataclass
class Pricing:
    line_discounts: list[Decimal]  # money per line, never above the line's amount
    redeem_caps: dict[str, Decimal]  # currency → share of the receipt payable with it
    no_redeem_lines: set[int] = field(default_factory=set)  # 0-based indexes
    no_earn_lines: set[int] = field(default_factory=set)
    applied: list[AppliedRule] = field(default_factory=list)


@dataclass
class Earning:
    earned: dict[str, list[Decimal]]  # currency → per line (0-based, same order as lines)
    applied: list[AppliedRule] = field(default_factory=list)


@dataclass(frozen=True)
class CurrencyInfo:
    code: str
    precision: int
    redeem_max_share: Decimal


@dataclass(frozen=True)
class CompiledRules:
    """The programme's rules, parsed once per programme version."""

    base_currency: str
    base_precision: int
    currencies: dict[str, CurrencyInfo]
    rules: tuple[RuleSpec, ...]

    @property
    def earn_currencies(self) -> frozenset[str]:
        """Every currency some rule may earn (the purchase locks these wallets)."""
        return frozenset(r.earn.currency for r in self.rules)


def compile_rules(spec: ProgramSpec) -> CompiledRules:
    return CompiledRules(
        base_currency=spec.base_currency,
        base_precision=2,
        currencies={
            c.code: CurrencyInfo(c.code, c.precision, c.redeem_max_share) for c in spec.currencies
        },
        rules=tuple(parse_rules(spec.rules)),
    )


def price(rules: CompiledRules, ctx: ReceiptContext) -> Pricing:
    """Phase 1: discounts and redemption limits (the base programme has no discounts)."""
    return Pricing(
        line_discounts=[ZERO] * len(ctx.lines),
        redeem_caps={code: c.redeem_max_share for code, c in rules.currencies.items()},
    )


def earn(
    rules: CompiledRules, ctx: ReceiptContext, pricing: Pricing, paid: list[Decimal]
) -> Earning:
    """Phase 2: points earned per line on the money paid. Anonymous receipts earn nothing."""
    result = Earning(earned={})
    if ctx.member is None:
        return result
    for rule in rules.rules:
        cur = rules.currencies[rule.earn.currency]
        per_line = result.earned.setdefault(cur.code, [ZERO] * len(ctx.lines))
        total = ZERO
        for i, money in enumerate(paid):
            if i in pricing.no_earn_lines or money <= 0:
                continue
            points = round_down(money * rule.earn.percent / HUNDRED, cur.precision)
            per_line[i] += points
            total += points
        if total > 0:
            result.applied.append(
                AppliedRule(
                    rule.name, "earn", f"{rule.earn.percent} % of the money paid", cur.code, total
                )
            )
    return result
