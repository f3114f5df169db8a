"""The rules engine: a pure function from a receipt and a member's context to effects.

No I/O here. The purchases service builds a ``ReceiptContext``, asks ``price`` for the
discounts and redemption limits, splits the redemption itself, then asks ``earn`` for the
points earned on the money actually paid, per line.

Two phases, because earning depends on what is paid, which depends on the discounts and
the points redeemed:

1. ``price(rules, ctx) -> Pricing``: which rules are live for this receipt (their
   conditions hold), then ``exclude`` rules (lines kept from earning or redemption),
   ``redeem`` rules (the share payable with a currency), then ``discount`` rules in order
   of evaluation, each on what the discounts before it left of each line.
2. ``earn(rules, ctx, pricing, paid) -> Earning``: ``earn`` rules on ``paid[i]`` (money paid
   for line i after discounts and redemption), then ``reward`` rules, then ``multiply``
   rules on what the earn rules gave, then the tier's earn multiplier.

Order of evaluation within an effect: ``priority`` (higher first), then the rule's place in
the programme. ``stacking``: ``stackable`` rules all apply; an ``exclusive`` rule that fires
stops every later rule of the same effect; among ``best_of`` rules of one ``group`` (default:
the effect) only the one that gives most applies (ties: the earlier). Caps (per receipt,
per member per period, campaign budget) cut what a rule gives; a cut amount is split over
the lines in proportion to what each would have had, exactly. Every amount is per line, so
per-line figures add up to the totals exactly.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cached_property, lru_cache
from typing import Any

from kopilka.core.dates import in_zone
from kopilka.core.money import ZERO, plain, quantum, round_down
from kopilka.core.split import allocate
from kopilka.spec.rules import (
    DAY_INDEX,
    CampaignSpec,
    HoursCond,
    RuleSpec,
    parse_campaigns,
    parse_rules,
)

HUNDRED = Decimal(100)
CENT = Decimal("0.01")
ONE = Decimal(1)
MONEY = 2


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
    purchases_count: int = 0  # confirmed purchases before this one
    lifetime_spend: Decimal = ZERO  # money paid, net of returns, before this purchase
    personal_discount: Decimal | None = None  # percent
    control_group: bool = False  # held out: the programme's rules give them nothing
    # rule key → what the rule already gave this member in its cap's current period
    usage: Mapping[str, Decimal] = field(default_factory=dict)


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
    # campaign code → what it has spent so far (campaigns with a budget)
    campaign_spent: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class AppliedRule:
    name: str
    effect: str  # "earn" | "multiply" | "reward" | "discount" | "redeem" | "exclude"
    reason: str
    currency: str | None = None
    amount: Decimal | None = None
    key: str | None = None
    version: int | None = None
    campaign: str | None = None
    lines: tuple[int, ...] = ()  # line_no of the lines it acted on


@dataclass(frozen=True)
class Verdict:
    """One rule's fate on one receipt, for simulation: fired or not, and why."""

    key: str
    name: str
    effect: str
    fired: bool
    reason: str


@dataclass
class Pricing:
    line_discounts: list[Decimal]  # money per line, never above the line's amount
    redeem_caps: dict[str, Decimal]  # currency → share of the receipt payable with it
    no_redeem_lines: set[int] = field(default_factory=set)  # 0-based indexes
    no_earn_lines: set[int] = field(default_factory=set)
    applied: list[AppliedRule] = field(default_factory=list)
    live: list[tuple[CompiledRule, tuple[int, ...]]] = field(default_factory=list)
    trace: list[Verdict] | None = None
    # rule key → (unit, amount given): for per-member caps
    given: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    campaign_spend: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Earning:
    earned: dict[str, list[Decimal]]  # currency → per line (0-based, same order as lines)
    applied: list[AppliedRule] = field(default_factory=list)
    given: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    campaign_spend: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CurrencyInfo:
    code: str
    precision: int
    redeem_max_share: Decimal


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its line filter turned into sets, ready for the hot path."""

    spec: RuleSpec
    key: str
    order: int  # place in the programme
    effect: str
    campaign: CampaignSpec | None
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    exclude_skus: frozenset[str]
    exclude_categories: frozenset[str]
    unit: str  # currency of what it gives (the base currency for discounts)
    precision: int
    synthetic: bool = False  # a tier benefit, not a rule of the programme
    reason: str = ""  # what it does, for applied_rules (when it does not depend on the member)
    rate: Decimal | None = None  # percent / 100 of a percent earn or discount
    limited: bool = False  # has a cap or a budgeted campaign

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def group(self) -> str:
        return self.spec.group or self.effect

    def matches(self, line: LineIn) -> bool:
        if line.sku in self.exclude_skus or line.category in self.exclude_categories:
            return False
        if self.skus is None and self.categories is None:
            return True
        return (self.skus is not None and line.sku in self.skus) or (
            self.categories is not None and line.category in self.categories
        )


@dataclass(frozen=True)
class TierBenefit:
    earn_multiplier: Decimal
    discount_percent: Decimal


@dataclass(frozen=True)
class CompiledRules:
    """The programme's rules, parsed once per programme version."""

    base_currency: str
    base_precision: int
    currencies: dict[str, CurrencyInfo]
    rules: tuple[CompiledRule, ...]  # in order of evaluation
    campaigns: dict[str, CampaignSpec] = field(default_factory=dict)
    tiers: dict[str, TierBenefit] = field(default_factory=dict)
    tier_rules: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # rule key → version in force

    @cached_property
    def earn_currencies(self) -> frozenset[str]:
        """Every currency some rule may earn (the purchase locks these wallets)."""
        return frozenset(
            r.unit for r in self.rules if r.effect in ("earn", "reward") and r.unit != "*"
        )

    @cached_property
    def needs_count(self) -> bool:
        """Whether some rule looks at the member's number of earlier purchases."""
        for r in self.rules:
            m = r.spec.when.member if r.spec.when else None
            if m is not None and (
                m.first_purchase is not None
                or m.min_purchases is not None
                or m.max_purchases is not None
            ):
                return True
        return False

    @cached_property
    def needs_spend(self) -> bool:
        """Whether some rule looks at the member's lifetime spend (a cumulative discount)."""
        return any(r.spec.discount is not None and r.spec.discount.ladder for r in self.rules)

    @cached_property
    def needs_history(self) -> bool:
        return self.needs_count or self.needs_spend

    @cached_property
    def member_capped(self) -> dict[str, str]:
        """Rule key → period, for rules with a per-member cap."""
        return {
            r.key: r.spec.caps.per_member.period
            for r in self.rules
            if r.spec.caps is not None and r.spec.caps.per_member is not None
        }

    @cached_property
    def budgeted(self) -> dict[str, str]:
        """Campaign code → budget currency, for campaigns with a budget."""
        return {c: s.budget.currency for c, s in self.campaigns.items() if s.budget is not None}


def _compile_one(
    spec: RuleSpec,
    order: int,
    campaigns: dict[str, CampaignSpec],
    base: str,
    precisions: dict[str, int],
    synthetic: bool = False,
) -> CompiledRule:
    lines = spec.when.lines if spec.when else None
    effect = spec.effect
    part = getattr(spec, effect)
    unit = getattr(part, "currency", None) or base
    if effect == "multiply" and spec.multiply is not None and spec.multiply.currency is None:
        unit = "*"
    rate: Decimal | None = None
    reason = ""
    if spec.earn is not None:
        e = spec.earn
        rate = e.percent / HUNDRED if e.percent is not None else None
        reason = (
            f"{_fmt(e.percent)} % of the money paid"
            if e.percent is not None
            else f"{_fmt(e.amount or ZERO)} per full {_fmt(e.every)} paid"
            if e.every is not None
            else f"{_fmt(e.amount or ZERO)} per {e.per}"
        )
    elif spec.discount is not None:
        d = spec.discount
        rate = d.percent / HUNDRED if d.percent is not None else None
        if d.percent is not None:
            reason = f"{_fmt(d.percent)} % off"
        elif d.amount is not None:
            reason = f"{_fmt(d.amount)} off " + (
                "the receipt" if d.per == "receipt" else f"per {d.per}"
            )
    elif spec.reward is not None:
        reason = f"a gift of {_fmt(spec.reward.amount)}"
    elif spec.multiply is not None:
        reason = f"×{_fmt(spec.multiply.factor)} the points earned"
    campaign = campaigns.get(spec.campaign) if spec.campaign else None
    limited = spec.caps is not None or (campaign is not None and campaign.budget is not None)
    return CompiledRule(
        reason=reason,
        rate=rate,
        limited=limited,
        spec=spec,
        key=spec.rule_key,
        order=order,
        effect=effect,
        campaign=campaign,
        skus=frozenset(lines.skus) if lines and lines.skus else None,
        categories=frozenset(lines.categories) if lines and lines.categories else None,
        exclude_skus=frozenset(lines.exclude_skus) if lines else frozenset(),
        exclude_categories=frozenset(lines.exclude_categories) if lines else frozenset(),
        unit=unit,
        precision=precisions.get(unit, MONEY),
        synthetic=synthetic,
    )


def compile_rules(spec: Any, versions: Mapping[str, int] | None = None) -> CompiledRules:
    """Parse a programme's rules, campaigns and tier benefits once (``spec`` is a
    ``ProgramSpec`` whose rules are valid)."""
    campaigns = {c.code: c for c in parse_campaigns(spec.campaigns)}
    precisions = {c.code: c.precision for c in spec.currencies}
    parsed = parse_rules(spec.rules)
    compiled = [
        _compile_one(r, i, campaigns, spec.base_currency, precisions)
        for i, r in enumerate(parsed)
        if r.active
    ]
    compiled.sort(key=lambda r: (-r.spec.priority, r.order))
    tiers: dict[str, TierBenefit] = {}
    tier_rules: dict[str, tuple[CompiledRule, ...]] = {}
    tiers_spec = getattr(spec, "tiers", None)
    for level in getattr(tiers_spec, "levels", None) or []:
        b = getattr(level, "benefits", None)
        mult = Decimal(getattr(b, "earn_multiplier", None) or ONE)
        disc = Decimal(getattr(b, "discount_percent", None) or ZERO)
        tiers[level.code] = TierBenefit(mult, disc)
        synthetic: list[CompiledRule] = []
        if disc > 0:
            synthetic.append(
                _compile_one(
                    RuleSpec.model_validate(
                        {
                            "key": f"tier-{level.code}-discount",
                            "name": f"{level.name}: {plain(disc)} % off",
                            "discount": {"percent": disc},
                        }
                    ),
                    len(parsed),
                    campaigns,
                    spec.base_currency,
                    precisions,
                    synthetic=True,
                )
            )
        if mult > 1:
            synthetic.append(
                _compile_one(
                    RuleSpec.model_validate(
                        {
                            "key": f"tier-{level.code}-multiplier",
                            "name": f"{level.name}: ×{plain(mult)} points",
                            "multiply": {"factor": mult},
                        }
                    ),
                    len(parsed) + 1,
                    campaigns,
                    spec.base_currency,
                    precisions,
                    synthetic=True,
                )
            )
        tier_rules[level.code] = tuple(synthetic)
    return CompiledRules(
        base_currency=spec.base_currency,
        base_precision=MONEY,
        currencies={
            c.code: CurrencyInfo(c.code, c.precision, c.redeem_max_share) for c in spec.currencies
        },
        rules=tuple(compiled),
        campaigns=campaigns,
        tiers=tiers,
        tier_rules=tier_rules,
        versions=dict(versions or {}),
    )


# ---------------------------------------------------------------------------- conditions


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _in_hours(hours: HoursCond, local: dt.datetime) -> bool:
    hm = f"{local.hour:02d}:{local.minute:02d}"
    if hours.start <= hours.end:
        return hours.start <= hm < hours.end
    return hm >= hours.start or hm < hours.end  # wraps past midnight


def _birthday_near(birth: dt.date, day: dt.date, before: int, after: int) -> bool:
    """Whether ``day`` is from ``before`` days before to ``after`` days after a birthday of
    the member (last year's, this year's or next year's). Counted in day numbers, and only
    over years the calendar has, so that no day (0001-01-01, 9999-12-31) overflows."""
    today = day.toordinal()
    for year in (day.year - 1, day.year, day.year + 1):
        if not dt.MINYEAR <= year <= dt.MAXYEAR:
            continue  # no birthday in a year before or after the calendar
        try:
            bday = birth.replace(year=year).toordinal()
        except ValueError:  # 29 February in a common year: the 28th
            bday = dt.date(year, 2, 28).toordinal()
        if bday - before <= today <= bday + after:
            return True
    return False


def _age(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class _Moment:
    local: dt.datetime
    day: dt.date
    weekday: int


def _campaign_live(c: CampaignSpec, ctx: ReceiptContext, m: _Moment) -> str | None:
    """None when the campaign runs at this moment, else why not."""
    if not c.active:
        return f"campaign {c.code} is switched off"
    if c.starts_at is not None and ctx.occurred_at < c.starts_at:
        return f"campaign {c.code} starts at {c.starts_at.isoformat()}"
    if c.ends_at is not None and ctx.occurred_at >= c.ends_at:
        return f"campaign {c.code} ended at {c.ends_at.isoformat()}"
    if c.days_of_week is not None and m.weekday not in {DAY_INDEX[d] for d in c.days_of_week}:
        return f"campaign {c.code} runs on {', '.join(c.days_of_week)} only"
    if c.hours is not None and not _in_hours(c.hours, m.local):
        return f"campaign {c.code} runs {c.hours.start}–{c.hours.end} only"
    return None


def _why_not(rule: CompiledRule, ctx: ReceiptContext, m: _Moment) -> str | None:
    """None when every condition of ``rule`` holds for the receipt, else the first that
    does not (the line filter is checked apart)."""
    w = rule.spec.when
    if rule.campaign is not None:
        why = _campaign_live(rule.campaign, ctx, m)
        if why:
            return why
    member = ctx.member
    if rule.effect in ("earn", "reward", "multiply") and member is None:
        return "no member on the receipt"
    if member is not None and member.control_group:
        return "the member is in the control group"
    if w is None:
        return None
    t = w.time
    if t is not None:
        if t.start is not None and m.day < t.start:
            return f"before {t.start.isoformat()}"
        if t.end is not None and m.day > t.end:
            return f"after {t.end.isoformat()}"
        if t.days_of_week is not None and m.weekday not in {DAY_INDEX[d] for d in t.days_of_week}:
            return f"not on {', '.join(t.days_of_week)}"
        if t.hours is not None and not _in_hours(t.hours, m.local):
            return f"not between {t.hours.start} and {t.hours.end}"
    r = w.receipt
    if r is not None:
        subtotal = sum((ln.amount for ln in ctx.lines), ZERO)
        if r.min_amount is not None and subtotal < r.min_amount:
            return f"receipt {subtotal} below {r.min_amount}"
        if r.max_amount is not None and subtotal > r.max_amount:
            return f"receipt {subtotal} above {r.max_amount}"
        if r.min_quantity is not None:
            qty = sum((ln.quantity for ln in ctx.lines), ZERO)
            if qty < r.min_quantity:
                return f"{plain(qty)} items, fewer than {plain(r.min_quantity)}"
        if r.stores is not None and ctx.store not in r.stores:
            return f"store {ctx.store} not in {', '.join(r.stores)}"
        if r.channels is not None and ctx.channel not in r.channels:
            return f"channel {ctx.channel} not in {', '.join(r.channels)}"
        if r.partners is not None and ctx.partner not in r.partners:
            return f"partner {ctx.partner or '—'} not in {', '.join(r.partners)}"
    mc = w.member
    if mc is not None:
        if member is None:
            return "no member on the receipt"
        if mc.tiers is not None and member.tier not in mc.tiers:
            return f"tier {member.tier or '—'} not in {', '.join(mc.tiers)}"
        if mc.tags is not None and not member.tags.intersection(mc.tags):
            return f"member has none of the tags {', '.join(mc.tags)}"
        if mc.min_age is not None or mc.max_age is not None:
            if member.birth_date is None:
                return "member's birth date unknown"
            age = _age(member.birth_date, m.day)
            if mc.min_age is not None and age < mc.min_age:
                return f"age {age} below {mc.min_age}"
            if mc.max_age is not None and age > mc.max_age:
                return f"age {age} above {mc.max_age}"
        if mc.birthday is not None:
            if member.birth_date is None:
                return "member's birth date unknown"
            if not _birthday_near(
                member.birth_date, m.day, mc.birthday.days_before, mc.birthday.days_after
            ):
                return "not in the member's birthday window"
        if mc.min_days_since_joining is not None or mc.max_days_since_joining is not None:
            joined = (
                member.joined_at.astimezone(m.local.tzinfo).date() if member.joined_at else m.day
            )
            days = (m.day - joined).days
            if mc.min_days_since_joining is not None and days < mc.min_days_since_joining:
                return f"joined {days} days ago, fewer than {mc.min_days_since_joining}"
            if mc.max_days_since_joining is not None and days > mc.max_days_since_joining:
                return f"joined {days} days ago, more than {mc.max_days_since_joining}"
        n = member.purchases_count
        if mc.first_purchase is True and n > 0:
            return "not the member's first purchase"
        if mc.first_purchase is False and n == 0:
            return "the member's first purchase"
        if mc.min_purchases is not None and n < mc.min_purchases:
            return f"{n} earlier purchases, fewer than {mc.min_purchases}"
        if mc.max_purchases is not None and n > mc.max_purchases:
            return f"{n} earlier purchases, more than {mc.max_purchases}"
    return None


def _moment(ctx: ReceiptContext) -> _Moment:
    local = in_zone(ctx.occurred_at, _zone(ctx.timezone))
    return _Moment(local, local.date(), local.weekday())


def _live(
    rules: CompiledRules, ctx: ReceiptContext, trace: list[Verdict] | None
) -> list[tuple[CompiledRule, tuple[int, ...]]]:
    """The rules whose conditions hold, each with the 0-based lines it acts on, in order of
    evaluation (the member's tier benefits last)."""
    m = _moment(ctx)
    candidates: Sequence[CompiledRule] = rules.rules
    if ctx.member is not None and ctx.member.tier in rules.tier_rules:
        candidates = (*rules.rules, *rules.tier_rules[ctx.member.tier])
    out: list[tuple[CompiledRule, tuple[int, ...]]] = []
    lines = ctx.lines
    # the receipt's lines indexed by SKU and category: a rule's lines are found from its
    # few SKUs and categories, not by testing every line against every rule
    every = tuple(range(len(lines)))
    by_sku: dict[str, list[int]] = {}
    by_cat: dict[str | None, list[int]] = {}
    for i, ln in enumerate(lines):
        by_sku.setdefault(ln.sku, []).append(i)
        by_cat.setdefault(ln.category, []).append(i)
    for rule in candidates:
        why = _why_not(rule, ctx, m)
        matched: tuple[int, ...] = ()
        if why is None:
            if rule.skus is None and rule.categories is None:
                found: Sequence[int] = every
            else:
                hits: set[int] = set()
                for sku in rule.skus or ():
                    hits.update(by_sku.get(sku, ()))
                for cat in rule.categories or ():
                    hits.update(by_cat.get(cat, ()))
                found = sorted(hits)
            if rule.exclude_skus or rule.exclude_categories:
                found = [i for i in found if rule.matches(lines[i])]
            matched = tuple(found)
            cond = rule.spec.when.lines if rule.spec.when else None
            if not matched:
                why = "no line matches"
            elif cond is not None and cond.min_quantity is not None:
                qty = sum((lines[i].quantity for i in matched), ZERO)
                if qty < cond.min_quantity:
                    why = f"{plain(qty)} matching items, fewer than {plain(cond.min_quantity)}"
            if why is None and cond is not None and cond.min_amount is not None:
                amt = sum((lines[i].amount for i in matched), ZERO)
                if amt < cond.min_amount:
                    why = f"matching lines {amt}, below {cond.min_amount}"
        if why is None:
            out.append((rule, matched))
        elif trace is not None:
            trace.append(Verdict(rule.key, rule.name, rule.effect, False, why))
    return out


# ---------------------------------------------------------------------------- caps


def _limit(rule: CompiledRule, ctx: ReceiptContext, spent: Mapping[str, Decimal]) -> Decimal | None:
    """The most ``rule`` may still give on this receipt (None: no limit)."""
    limit: Decimal | None = None
    caps = rule.spec.caps
    if caps is not None and caps.per_receipt is not None:
        limit = caps.per_receipt
    if caps is not None and caps.per_member is not None and ctx.member is not None:
        left = max(caps.per_member.amount - ctx.member.usage.get(rule.key, ZERO), ZERO)
        limit = left if limit is None else min(limit, left)
    camp = rule.campaign
    if camp is not None and camp.budget is not None:
        left = max(
            camp.budget.amount
            - ctx.campaign_spent.get(camp.code, ZERO)
            - spent.get(camp.code, ZERO),
            ZERO,
        )
        limit = left if limit is None else min(limit, left)
    return limit


def _cut(parts: dict[int, Decimal], limit: Decimal | None, precision: int) -> dict[int, Decimal]:
    """``parts`` scaled down to add up to ``limit`` (exactly, largest remainder), if above."""
    if limit is None:
        return parts
    total = sum(parts.values(), ZERO)
    if total <= limit:
        return parts
    idx = list(parts)
    limit = round_down(limit, precision)
    cut = allocate(limit, [parts[i] for i in idx], precision) if limit > 0 else [ZERO] * len(idx)
    return dict(zip(idx, cut, strict=True))


# ---------------------------------------------------------------------------- effects


def _spread(
    total: Decimal, idx: Sequence[int], weights: Sequence[Decimal], precision: int
) -> dict[int, Decimal]:
    """``total`` split over the lines ``idx`` in proportion to ``weights`` (exactly), the
    lines that get nothing left out."""
    if not idx or total <= 0:
        return {}
    return {i: v for i, v in zip(idx, allocate(total, weights, precision), strict=True) if v > 0}


class _NotApplicable(Exception):
    """A rule whose conditions hold but that has nothing to give this member (a personal
    discount of a member who has none, say); the message says why."""


def _fmt(d: Decimal) -> str:
    return plain(d)


def _discount_parts(
    rule: CompiledRule, ctx: ReceiptContext, lines: tuple[int, ...], left: list[Decimal]
) -> tuple[dict[int, Decimal], str]:
    """Money off per line (only lines with something off), and why."""
    d = rule.spec.discount
    assert d is not None
    rate = rule.rate
    reason = rule.reason
    if d.personal:
        member = ctx.member
        percent = member.personal_discount if member is not None else None
        if not percent:
            raise _NotApplicable("the member has no personal discount")
        rate, reason = percent / HUNDRED, f"personal discount: {_fmt(percent)} % off"
    elif d.ladder is not None:
        spend = ctx.member.lifetime_spend if ctx.member is not None else None
        if spend is None:
            raise _NotApplicable("no member on the receipt")
        step = None
        for st in d.ladder:
            if spend >= st.from_spend:
                step = st
        if step is None:
            raise _NotApplicable(
                f"lifetime spend {spend} below the first step {d.ladder[0].from_spend}"
            )
        rate = step.percent / HUNDRED
        reason = (
            f"cumulative discount (lifetime spend {spend} ≥ {step.from_spend}): "
            f"{_fmt(step.percent)} % off"
        )
    parts: dict[int, Decimal] = {}
    if rate is not None:
        # a percent of at most 100 of an amount in kopecks, rounded half up to kopecks,
        # never exceeds the amount
        for i in lines:
            m = left[i]
            if m > 0:
                v = (m * rate).quantize(CENT, ROUND_HALF_UP)
                if v > 0:
                    parts[i] = v
        return parts, reason
    assert d.amount is not None
    if d.per == "receipt":
        idx = [i for i in lines if left[i] > 0]
        weights = [left[i] for i in idx]
        return _spread(min(d.amount, sum(weights, ZERO)), idx, weights, MONEY), reason
    for i in lines:
        m = left[i]
        if m > 0:
            each = d.amount if d.per == "line" else d.amount * ctx.lines[i].quantity
            v = min(each.quantize(CENT, ROUND_HALF_UP), m)
            if v > 0:
                parts[i] = v
    return parts, reason


def _earn_parts(
    rule: CompiledRule,
    ctx: ReceiptContext,
    lines: tuple[int, ...],
    paid: Sequence[Decimal],
    no_earn: set[int],
) -> tuple[dict[int, Decimal], str]:
    """Points per line (only lines that get some), and why."""
    spec = rule.spec
    q = quantum(rule.precision)
    eligible: Sequence[int] = [i for i in lines if i not in no_earn] if no_earn else lines
    parts: dict[int, Decimal] = {}
    if spec.earn is not None:
        e = spec.earn
        rate = rule.rate
        if rate is not None:
            for i in eligible:
                m = paid[i]
                if m > 0:
                    v = (m * rate).quantize(q, ROUND_DOWN)
                    if v > 0:
                        parts[i] = v
            return parts, rule.reason
        assert e.amount is not None
        if e.per == "receipt":
            idx = [i for i in eligible if paid[i] > 0]
            weights = [paid[i] for i in idx]
            total = e.amount
            if e.every is not None:
                # per FULL ``every`` of the matching lines' money paid, together
                total = e.amount * (sum(weights, ZERO) // e.every)
            return _spread(total, idx, weights, rule.precision), rule.reason
        for i in eligible:
            if paid[i] > 0:
                raw = e.amount if e.per == "line" else e.amount * ctx.lines[i].quantity
                v = raw.quantize(q, ROUND_DOWN)
                if v > 0:
                    parts[i] = v
        return parts, rule.reason
    if spec.reward is not None:
        idx = [i for i in eligible if paid[i] > 0]
        weights = [paid[i] for i in idx]
        if not idx:  # paid wholly with points: spread over the lines' amounts instead
            idx = [i for i in eligible if ctx.lines[i].amount > 0]
            weights = [ctx.lines[i].amount for i in idx]
        return _spread(spec.reward.amount, idx, weights, rule.precision), rule.reason
    raise AssertionError(rule.effect)


# ---------------------------------------------------------------------------- phases


def _ordered(
    live: list[tuple[CompiledRule, tuple[int, ...]]], effect: str
) -> list[tuple[CompiledRule, tuple[int, ...]]]:
    return [x for x in live if x[0].effect == effect]


def _applied(
    rules: CompiledRules,
    rule: CompiledRule,
    reason: str,
    unit: str | None,
    amount: Decimal | None,
    lines: Sequence[int],
    ctx: ReceiptContext,
) -> AppliedRule:
    return AppliedRule(
        name=rule.name,
        effect=rule.effect,
        reason=reason,
        currency=unit,
        amount=amount,
        key=rule.key,
        version=rules.versions.get(rule.key),
        campaign=rule.campaign.code if rule.campaign else None,
        lines=tuple(i + 1 for i in sorted(lines)),  # line_no is 1-based, in order
    )


Fired = tuple[CompiledRule, dict[int, Decimal], str, Decimal]


def _capped(
    rule: CompiledRule,
    ctx: ReceiptContext,
    spent: Mapping[str, Decimal],
    parts: dict[int, Decimal],
    reason: str,
) -> tuple[dict[int, Decimal], str, Decimal]:
    """``parts`` cut to the rule's caps and its campaign's budget (positive parts only)."""
    total = sum(parts.values(), ZERO)
    if not rule.limited:
        return parts, reason, total
    limit = _limit(rule, ctx, spent)
    if limit is None or total <= limit:
        return parts, reason, total
    cut = {i: a for i, a in _cut(parts, limit, rule.precision).items() if a > 0}
    total = sum(cut.values(), ZERO)
    return cut, f"{reason} (capped at {_fmt(total)})", total


def _run(
    rules: CompiledRules,
    ctx: ReceiptContext,
    stream: list[tuple[CompiledRule, tuple[int, ...]]],
    compute: Any,
    apply: Any,
    spent: dict[str, Decimal],
    trace: list[Verdict] | None,
) -> list[Fired]:
    """Evaluate one effect's rules in order with stacking and caps; ``compute(rule, lines)``
    gives (positive per-line parts, reason) on the current state, ``apply(rule, parts)``
    commits them. Returns what fired, with its total."""
    fired: list[Fired] = []
    done_groups: set[str] = set()
    stopped_by: str | None = None
    for pos, (rule, lines) in enumerate(stream):
        if stopped_by is not None:
            if trace is not None:
                why = f"exclusive rule {stopped_by} fired first"
                trace.append(Verdict(rule.key, rule.name, rule.effect, False, why))
            continue
        best: Fired | None = None
        if rule.spec.stacking != "best_of":
            try:
                parts, reason = compute(rule, lines)
            except _NotApplicable as exc:
                if trace is not None:
                    trace.append(Verdict(rule.key, rule.name, rule.effect, False, str(exc)))
                continue
            if not parts:
                if trace is not None:
                    why = reason + ": nothing to give on these lines"
                    trace.append(Verdict(rule.key, rule.name, rule.effect, False, why))
                continue
            parts, reason, total = _capped(rule, ctx, spent, parts, reason)
            if not parts:
                if trace is not None:
                    why = "its cap or campaign budget is used up"
                    trace.append(Verdict(rule.key, rule.name, rule.effect, False, why))
                continue
            best = (rule, parts, reason, total)
        else:
            if rule.group in done_groups:
                continue  # decided with its group
            done_groups.add(rule.group)
            outcomes: list[tuple[CompiledRule, str, Decimal]] = []
            for cand, cand_lines in stream[pos:]:
                if cand.spec.stacking != "best_of" or cand.group != rule.group:
                    continue
                try:
                    parts, reason = compute(cand, cand_lines)
                except _NotApplicable as exc:
                    outcomes.append((cand, str(exc), ZERO))
                    continue
                if not parts:
                    outcomes.append((cand, reason + ": nothing to give on these lines", ZERO))
                    continue
                parts, reason, total = _capped(cand, ctx, spent, parts, reason)
                if not parts:
                    outcomes.append((cand, "its cap or campaign budget is used up", ZERO))
                    continue
                outcomes.append((cand, reason, total))
                if best is None or total > best[3]:
                    best = (cand, parts, reason, total)
            if trace is not None:
                for cand, reason, total in outcomes:
                    if best is not None and cand is best[0]:
                        continue
                    if best is not None and total > 0:
                        reason = f"best_of: {best[0].key} gives more"
                    trace.append(Verdict(cand.key, cand.name, cand.effect, False, reason))
            if best is None:
                continue
        winner, parts, reason, total = best
        apply(winner, parts)
        camp = winner.campaign
        if camp is not None and camp.budget is not None:
            spent[camp.code] = spent.get(camp.code, ZERO) + total
        fired.append(best)
        if trace is not None:
            trace.append(Verdict(winner.key, winner.name, winner.effect, True, reason))
        if winner.spec.stacking == "exclusive":
            stopped_by = winner.key
    return fired


def price(rules: CompiledRules, ctx: ReceiptContext, trace: bool = False) -> Pricing:
    """Phase 1: the live rules, exclusions, redemption caps and discounts."""
    verdicts: list[Verdict] | None = [] if trace else None
    live = _live(rules, ctx, verdicts)
    n = len(ctx.lines)
    pricing = Pricing(
        line_discounts=[ZERO] * n,
        redeem_caps={code: c.redeem_max_share for code, c in rules.currencies.items()},
        live=live,
        trace=verdicts,
    )
    for rule, lines in _ordered(live, "exclude"):
        ex = rule.spec.exclude
        assert ex is not None
        if ex.earning:
            pricing.no_earn_lines.update(lines)
        if ex.redemption:
            pricing.no_redeem_lines.update(lines)
        what = " and ".join(
            w for w, on in (("earning", ex.earning), ("redemption", ex.redemption)) if on
        )
        reason = f"{len(lines)} line(s) excluded from {what}"
        pricing.applied.append(_applied(rules, rule, reason, None, None, lines, ctx))
        if verdicts is not None:
            verdicts.append(Verdict(rule.key, rule.name, "exclude", True, reason))
    capped: set[str] = set()
    for rule, lines in _ordered(live, "redeem"):
        rd = rule.spec.redeem
        assert rd is not None
        if rd.currency in capped:
            if verdicts is not None:
                verdicts.append(
                    Verdict(rule.key, rule.name, "redeem", False, "a rule before it set this cap")
                )
            continue
        capped.add(rd.currency)
        pricing.redeem_caps[rd.currency] = rd.max_share
        reason = f"up to {_fmt(rd.max_share * HUNDRED)} % payable with {rd.currency}"
        pricing.applied.append(_applied(rules, rule, reason, rd.currency, None, lines, ctx))
        if verdicts is not None:
            verdicts.append(Verdict(rule.key, rule.name, "redeem", True, reason))
    left = [ln.amount for ln in ctx.lines]

    def compute(rule: CompiledRule, lines: tuple[int, ...]) -> tuple[dict[int, Decimal], str]:
        return _discount_parts(rule, ctx, lines, left)

    def apply(rule: CompiledRule, parts: dict[int, Decimal]) -> None:
        for i, a in parts.items():
            left[i] -= a
            pricing.line_discounts[i] += a

    spent: dict[str, Decimal] = {}
    for rule, parts, reason, total in _run(
        rules, ctx, _ordered(live, "discount"), compute, apply, spent, verdicts
    ):
        pricing.applied.append(
            _applied(rules, rule, reason, rules.base_currency, total, list(parts), ctx)
        )
        if not rule.synthetic:
            pricing.given[rule.key] = (rules.base_currency, total)
    pricing.campaign_spend = spent
    return pricing


def earn(
    rules: CompiledRules, ctx: ReceiptContext, pricing: Pricing, paid: list[Decimal]
) -> Earning:
    """Phase 2: points earned per line on the money paid. Anonymous receipts earn nothing."""
    result = Earning(earned={})
    if ctx.member is None:
        return result
    n = len(ctx.lines)
    verdicts = pricing.trace
    spent = dict(pricing.campaign_spend)
    earned = result.earned
    base: dict[str, list[Decimal]] = {}  # what earn rules (and multipliers) gave

    for effect in ("earn", "reward"):

        def compute(rule: CompiledRule, lines: tuple[int, ...]) -> tuple[dict[int, Decimal], str]:
            return _earn_parts(rule, ctx, lines, paid, pricing.no_earn_lines)

        def apply(rule: CompiledRule, parts: dict[int, Decimal], effect: str = effect) -> None:
            acc = earned.setdefault(rule.unit, [ZERO] * n)
            b = base.setdefault(rule.unit, [ZERO] * n) if effect == "earn" else None
            for i, a in parts.items():
                acc[i] += a
                if b is not None:
                    b[i] += a

        for rule, parts, reason, total in _run(
            rules, ctx, _ordered(pricing.live, effect), compute, apply, spent, verdicts
        ):
            result.applied.append(_applied(rules, rule, reason, rule.unit, total, list(parts), ctx))
            result.given[rule.key] = (rule.unit, total)

    # multipliers: one stream per currency, on what the earn rules gave (compounding:
    # ×2 then ×3 is ×6); reward points are never multiplied
    multipliers = _ordered(pricing.live, "multiply")
    for code in sorted(base):
        precision = rules.currencies[code].precision
        b = base[code]
        stream = [
            (replace(r, unit=code, precision=precision), lines)
            for r, lines in multipliers
            if r.spec.multiply is not None and r.spec.multiply.currency in (None, code)
        ]

        def compute_m(
            rule: CompiledRule,
            lines: tuple[int, ...],
            b: list[Decimal] = b,
            q: Decimal = quantum(precision),
        ) -> tuple[dict[int, Decimal], str]:
            assert rule.spec.multiply is not None
            extra = rule.spec.multiply.factor - ONE
            parts = {}
            for i in lines:
                if b[i] > 0 and i not in pricing.no_earn_lines:
                    v = (b[i] * extra).quantize(q, ROUND_DOWN)
                    if v > 0:
                        parts[i] = v
            return parts, rule.reason

        def apply_m(rule: CompiledRule, parts: dict[int, Decimal], code: str = code) -> None:
            acc = earned.setdefault(code, [ZERO] * n)
            bb = base[code]
            for i, a in parts.items():
                acc[i] += a
                bb[i] += a

        for rule, parts, reason, total in _run(
            rules, ctx, stream, compute_m, apply_m, spent, verdicts
        ):
            result.applied.append(_applied(rules, rule, reason, code, total, list(parts), ctx))
            if not rule.synthetic:
                prev = result.given.get(rule.key, (code, ZERO))[1]
                result.given[rule.key] = (code, prev + total)
    if verdicts is not None:
        for r, _ in multipliers:
            code_m = r.spec.multiply.currency if r.spec.multiply else None
            if (code_m is not None and code_m not in base) or not base:
                verdicts.append(
                    Verdict(r.key, r.name, "multiply", False, "no points earned to multiply")
                )
    result.campaign_spend = {k: v - pricing.campaign_spend.get(k, ZERO) for k, v in spent.items()}
    result.campaign_spend = {k: v for k, v in result.campaign_spend.items() if v}
    return result


__all__ = [
    "AppliedRule",
    "CompiledRule",
    "CompiledRules",
    "CurrencyInfo",
    "Earning",
    "LineIn",
    "MemberContext",
    "Pricing",
    "ReceiptContext",
    "Verdict",
    "compile_rules",
    "earn",
    "price",
]
