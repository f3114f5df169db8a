"""A receipt's figures: ``figure``, the one function ``calculate`` answers with and
``confirm`` records, so a till is never charged other figures than it showed; what-if
simulations; the checks a receipt passes before anything is read under a lock.

Money is rounded to 0.01 (half up for line amounts; redemption and earning split exactly
across lines); points to their currency's precision (earning rounded down per line).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from kopilka.core.config import get_settings
from kopilka.core.db import db_key, now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.money import (
    ZERO,
    fits_precision,
    fmt,
    plain,
    round_down,
    round_half_up,
)
from kopilka.core.principal import Principal
from kopilka.core.split import allocate
from kopilka.coupons import redeem as coupons
from kopilka.ledger import planner as ledger_planner
from kopilka.ledger import service as ledger
from kopilka.members import service as members
from kopilka.members.queries import Member
from kopilka.program.service import Program, current_program
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules import engine
from kopilka.rules import service as rules_service
from kopilka.spec.rewards import RewardSpec

MONEY_PRECISION = 2


CENT = Decimal("0.01")


# What is left of a reward's stock (None: unlimited). The rewards build on purchases, so
# they fill it (``wiring``): a receipt or a quote asking for more is told at once; the
# rewards' conditional update, when the receipt is written, is what never oversells.
StockLeft = Callable[[Session, str], int | None]
_stock_left: StockLeft | None = None


def use_reward_stock(fn: StockLeft) -> None:
    global _stock_left
    _stock_left = fn


_rules_lock = threading.Lock()
_rules_cache: dict[str, engine.CompiledRules] = {}


def compiled_rules(program: Program, session: Session) -> engine.CompiledRules:
    """The programme's rules compiled once per programme (by digest), with the version of
    each rule in force (a draft being simulated has none yet)."""
    key = f"{db_key(session)}|{program.digest}"
    with _rules_lock:
        hit = _rules_cache.get(key)
    if hit is None:
        versions = rules_service.versions_in_force(session, program.spec.rules)
        hit = engine.compile_rules(program.spec, versions)
        with _rules_lock:
            if len(_rules_cache) >= 8:
                _rules_cache.clear()
            _rules_cache[key] = hit
    return hit


@dataclass
class Figures:
    """Everything a receipt's confirmation writes, and the JSON the caller sees."""

    program: Program
    member_id: uuid.UUID | None
    lines: list[engine.LineIn]
    discounts: list[Decimal]
    redeem_currency: str | None
    redeemed: Decimal
    redeemed_value: Decimal
    line_redeemed: list[Decimal]
    line_redeemed_value: list[Decimal]
    line_due: list[Decimal]
    earned: dict[str, list[Decimal]]
    available_at: dict[str, dt.datetime]
    max_redeemable: Decimal | None
    available: Decimal | None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    applied: list[engine.AppliedRule] = field(default_factory=list)
    coupons: coupons.CouponOutcome | None = None
    rules: engine.CompiledRules | None = None
    given: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    campaign_spend: dict[str, Decimal] = field(default_factory=dict)
    campaign_spent: Mapping[str, Decimal] = field(default_factory=dict)
    trace: list[engine.Verdict] | None = None
    # lines sold as rewards of the catalogue (0-based index): the reward and its discount
    rewards: dict[int, tuple[RewardSpec, Decimal]] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    quote_id: str = ""


def precision_of(program: Program, code: str) -> int:
    cur = program.spec.currency(code)
    return cur.precision if cur else MONEY_PRECISION


def request_hash(body: PurchaseIn) -> str:
    data = body.model_dump(mode="json", exclude={"quote_id"})
    data["occurred_at"] = body.occurred_at.astimezone(dt.UTC).isoformat()
    for line in data["lines"]:
        if line.get("reward") is None:  # the hash of a receipt before rewards existed
            line.pop("reward", None)
        line["quantity"] = str(Decimal(line["quantity"]).normalize())
        line["unit_price"] = str(Decimal(line["unit_price"]).quantize(CENT))
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _resolve(
    session: Session, body: PurchaseIn, program: Program, principal: Principal
) -> tuple[Member | None, str | None]:
    partner = check_store(body, program, principal)
    member = None
    if body.member is not None:
        member = members.resolve_member(
            session, body.member, program.spec.default_phone_region, "member"
        )
        check_member(member.id, member.status)
    check_redeem(body, program, member is not None)
    return member, partner


def check_store(body: PurchaseIn, program: Program, principal: Principal) -> str | None:
    """The receipt's store is the programme's and the caller's; its partner (or None)."""
    store = next((s for s in program.spec.stores if s.code == body.store), None)
    if store is None:
        raise Problem(
            422,
            "store_not_found",
            f"no store {body.store!r} in the programme: declare it in the programme file's "
            "`stores:` section and apply the file (`kopilka program apply FILE`)",
            errors=[field_error("store", f"unknown store {body.store!r}", "unknown")],
        )
    if principal.store is not None and principal.store != body.store:
        raise Problem(
            403, "forbidden", f"this key may only record purchases of store {principal.store!r}"
        )
    if principal.partner is not None and principal.partner != store.partner:
        raise Problem(403, "forbidden", "this key may only record purchases of its partner")
    return store.partner


def check_member(member_id: uuid.UUID, status: str) -> None:
    """Only an active member's receipts are recorded (422 ``member_blocked``)."""
    if status != "active":
        raise Problem(
            422,
            "member_blocked",
            f"member {member_id} is {status}",
            errors=[field_error("member", f"the member is {status}", "blocked")],
        )


def check_redeem(body: PurchaseIn, program: Program, has_member: bool) -> None:
    """The redemption asked for names a member (unless it is of nothing), a currency and
    a fitting amount."""
    if body.redeem is None:
        return
    if not has_member and body.redeem.amount != 0:
        raise validation_problem(
            [field_error("redeem", "points can only be redeemed by a member", "no_member")]
        )
    if program.spec.currency(body.redeem.currency) is None:
        raise Problem(
            422,
            "currency_not_found",
            f"no currency {body.redeem.currency!r}",
            errors=[field_error("redeem.currency", "unknown currency", "unknown")],
        )
    amount = body.redeem.amount
    if amount != "max" and not fits_precision(
        Decimal(amount), precision_of(program, body.redeem.currency)
    ):
        raise validation_problem(
            [
                field_error(
                    "redeem.amount",
                    f"{body.redeem.currency} has "
                    f"{precision_of(program, body.redeem.currency)} decimal places",
                    "precision",
                )
            ]
        )


def member_context(
    session: Session,
    member: Member | None,
    program: Program,
    occurred_at: dt.datetime,
) -> engine.MemberContext | None:
    """What the rules know of ``member`` for a receipt at ``occurred_at`` (None: nobody)."""
    if member is None:
        return None
    rules = compiled_rules(program, session)
    return rules_service.member_context(session, member, rules, program.spec, occurred_at)


def figure(
    session: Session,
    body: PurchaseIn,
    program: Program,
    member_id: uuid.UUID | None,
    partner: str | None,
    strict: bool,
    member_ctx: engine.MemberContext | None,
    caller: str | None = None,
    trace: bool = False,
    campaign_spent: Mapping[str, Decimal] | None = None,
    available: Decimal | None = None,
) -> Figures:
    """The receipt's figures. ``strict``: limits are errors (confirm); otherwise they are
    reported as warnings and the redemption is cut to what is allowed (calculate).
    ``member_id``: who redeems (None: nobody can); ``member_ctx``: what the rules know of
    the member (``member_context``; a hypothetical member's in a simulation);
    ``available``: what the member can redeem, if already read under the wallet's lock.

    Order: the rules' discounts, then the coupons' (each code sees the lines as the rules
    and the codes before it left them), then the redemption on what is left, then the
    earning on the money paid; coupon multipliers scale what the rules earned per line
    (rounded down), and coupon points are added on top. ``caller``: whom unknown coupon
    codes count against (brute-force protection)."""
    lines = [
        engine.LineIn(
            line_no=i + 1,
            sku=ln.sku,
            name=ln.name,
            category=ln.category,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            amount=ln.amount(),
        )
        for i, ln in enumerate(body.lines)
    ]
    rules = compiled_rules(program, session)
    if campaign_spent is None:
        campaign_spent = rules_service.lazy_spent(session, rules)
    ctx = engine.ReceiptContext(
        store=body.store,
        partner=partner,
        channel=body.channel,
        occurred_at=body.occurred_at,
        timezone=program.spec.timezone,
        lines=tuple(lines),
        member=member_ctx,
        coupons=tuple(body.coupons),
        campaign_spent=campaign_spent,
    )
    pricing = engine.price(rules, ctx, trace=trace)
    discounts = [
        min(max(d, ZERO), ln.amount) for d, ln in zip(pricing.line_discounts, lines, strict=True)
    ]
    after = [ln.amount - d for ln, d in zip(lines, discounts, strict=True)]
    outcome: coupons.CouponOutcome | None = None
    if body.coupons:
        outcome = coupons.evaluate(
            session,
            list(body.coupons),
            ctx,
            member_id,
            now(),
            after,
            caller=caller,
            precisions={c.code: c.precision for c in program.spec.currencies},
        )
        for i, d in enumerate(outcome.line_discounts):
            d = min(max(d, ZERO), after[i])
            discounts[i] += d
            after[i] -= d
    n = len(lines)
    rewarded: dict[int, tuple[RewardSpec, Decimal]] = {}
    warnings: list[dict[str, Any]] = []
    if any(ln.reward is not None for ln in body.lines):
        rewarded = reward_lines(session, body, program, member_id, strict, warnings)
        for i, (reward, _) in rewarded.items():
            # charged at the reward's price: what the other discounts left above it is the
            # reward's discount; a reward line is neither paid with points nor earns
            assert reward.gives.price is not None
            price = round_half_up(reward.gives.price * lines[i].quantity, MONEY_PRECISION)
            d = max(after[i] - price, ZERO)
            rewarded[i] = (reward, d)
            discounts[i] += d
            after[i] -= d
            pricing.no_redeem_lines.add(i)
            pricing.no_earn_lines.add(i)
    redeemed = redeemed_value = ZERO
    line_redeemed = [ZERO] * n
    line_value = [ZERO] * n
    max_redeemable: Decimal | None = None
    known, available = available, None  # what the caller read, and what is reported
    code = body.redeem.currency if body.redeem else None
    if code is None and member_id is not None and not strict:
        # still tell the till what could be redeemed in the first monetary currency
        code = next(
            (c.code for c in program.spec.currencies if c.value > 0 and c.redeem_max_share > 0),
            None,
        )
    if code is not None and member_id is not None:
        cur = program.spec.currency(code)
        assert cur is not None
        eligible = [0 if i in pricing.no_redeem_lines else 1 for i in range(n)]
        base = sum((a for a, e in zip(after, eligible, strict=True) if e), ZERO)
        share = pricing.redeem_caps.get(code, cur.redeem_max_share)
        cap_points = ZERO
        if cur.value > 0:
            cap_money = round_down(base * share, MONEY_PRECISION)
            cap_points = round_down(cap_money / cur.value, cur.precision)
        available = known if known is not None else ledger.redeemable(session, member_id, code)
        max_redeemable = min(cap_points, available)
        if body.redeem is not None:
            asked = max_redeemable if body.redeem.amount == "max" else Decimal(body.redeem.amount)
            want = asked
            problem = ledger_planner.insufficient(
                available,
                asked,
                currency=code,
                precision=cur.precision,
                field_name="redeem.amount",
            )
            if problem is not None:
                if strict:
                    raise problem
                warnings.append(
                    {"code": problem.code, "field": "redeem.amount", "message": problem.detail}
                )
                want = min(want, max_redeemable)
            if asked > cap_points:
                problem = Problem(
                    422,
                    "redeem_limit_exceeded",
                    f"at most {fmt(cap_points, cur.precision)} {code} on this receipt",
                    errors=[
                        field_error("redeem.amount", "more than the programme allows", "limit")
                    ],
                    extra={"max_redeemable": fmt(cap_points, cur.precision)},
                )
                if strict:
                    raise problem
                warnings.append(
                    {"code": problem.code, "field": "redeem.amount", "message": problem.detail}
                )
                want = min(want, max_redeemable)
            redeemed = want
            if redeemed > 0:
                redeemed_value = round_down(redeemed * cur.value, MONEY_PRECISION)
                weights = [a if e else ZERO for a, e in zip(after, eligible, strict=True)]
                line_value = allocate(redeemed_value, weights, MONEY_PRECISION)
                line_redeemed = allocate(redeemed, weights, cur.precision)
    due = [a - v for a, v in zip(after, line_value, strict=True)]
    earning = engine.earn(rules, ctx, pricing, due)
    raw_earned = {c: list(amounts) for c, amounts in earning.earned.items()}
    held_out = ctx.member is not None and ctx.member.control_group
    if outcome is not None and member_id is not None and not held_out:
        # the control group earns nothing, coupon points included (coupon discounts, being
        # money off and not earnings, still apply)
        for c, factor in outcome.multipliers.items():
            if c in raw_earned:
                p = precision_of(program, c)
                raw_earned[c] = [round_down(a * factor, p) for a in raw_earned[c]]
        for c, extra in outcome.earn.items():
            acc = raw_earned.setdefault(c, [ZERO] * n)
            for i, a in enumerate(extra):
                acc[i] += a
    earned = {c: amounts for c, amounts in raw_earned.items() if sum(amounts, ZERO) > 0}
    available_at: dict[str, dt.datetime] = {}
    for c in earned:
        cur_row = ledger.currency_row(session, c)
        available_at[c] = ledger.lot_times(cur_row, body.occurred_at, program.spec.timezone)[0]
    fig = Figures(
        program=program,
        member_id=member_id,
        lines=lines,
        discounts=discounts,
        redeem_currency=body.redeem.currency if body.redeem else None,
        redeemed=redeemed,
        redeemed_value=redeemed_value,
        line_redeemed=line_redeemed,
        line_redeemed_value=line_value,
        line_due=due,
        earned=earned,
        available_at=available_at,
        max_redeemable=max_redeemable,
        available=available,
        warnings=warnings,
        applied=[*pricing.applied, *earning.applied],
        coupons=outcome,
        rules=rules,
        given={**pricing.given, **earning.given},
        campaign_spend={
            k: pricing.campaign_spend.get(k, ZERO) + earning.campaign_spend.get(k, ZERO)
            for k in {*pricing.campaign_spend, *earning.campaign_spend}
        },
        campaign_spent=campaign_spent,
        trace=pricing.trace,
        rewards=rewarded,
    )
    fig.json = _figures_json(fig, body, code)
    fig.quote_id = _quote_id(fig)
    return fig


def _figures_json(f: Figures, body: PurchaseIn, limit_code: str | None) -> dict[str, Any]:
    m = MONEY_PRECISION
    rp = precision_of(f.program, f.redeem_currency) if f.redeem_currency else 2
    redeemed = (
        [
            {
                "currency": f.redeem_currency,
                "amount": fmt(f.redeemed, rp),
                "value": fmt(f.redeemed_value, m),
            }
        ]
        if f.redeem_currency and f.redeemed > 0
        else []
    )
    lines = []
    for i, ln in enumerate(f.lines):
        lines.append(
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "name": ln.name,
                "category": ln.category,
                "quantity": plain(ln.quantity),
                "unit_price": fmt(ln.unit_price, m),
                "amount": fmt(ln.amount, m),
                "discount": fmt(f.discounts[i], m),
                "redeemed": (
                    [
                        {
                            "currency": f.redeem_currency,
                            "amount": fmt(f.line_redeemed[i], rp),
                            "value": fmt(f.line_redeemed_value[i], m),
                        }
                    ]
                    if redeemed
                    else []
                ),
                "total_due": fmt(f.line_due[i], m),
                "earned": [
                    {"currency": c, "amount": fmt(a[i], precision_of(f.program, c))}
                    for c, a in f.earned.items()
                ],
            }
        )
        if i in f.rewards:
            lines[-1]["reward"] = f.rewards[i][0].code
    limit_precision = precision_of(f.program, limit_code) if limit_code else 2
    return {
        "external_id": body.external_id,
        "store": body.store,
        "channel": body.channel,
        "member_id": str(f.member_id) if f.member_id else None,
        "occurred_at": body.occurred_at.isoformat(),
        "subtotal": fmt(sum((ln.amount for ln in f.lines), ZERO), m),
        "discount": fmt(sum(f.discounts, ZERO), m),
        "redeemed": redeemed,
        "total_due": fmt(sum(f.line_due, ZERO), m),
        "earned": [
            {
                "currency": c,
                "amount": fmt(sum(a, ZERO), precision_of(f.program, c)),
                "available_at": f.available_at[c].isoformat(),
            }
            for c, a in f.earned.items()
        ],
        "max_redeemable": (
            {"currency": limit_code, "amount": fmt(f.max_redeemable, limit_precision)}
            if limit_code and f.max_redeemable is not None
            else None
        ),
        "available": (
            {"currency": limit_code, "amount": fmt(f.available, limit_precision)}
            if limit_code and f.available is not None
            else None
        ),
        "coupons": f.coupons.as_json() if f.coupons is not None else [],
        "applied_rules": [
            {
                "key": a.key,
                "version": a.version,
                "name": a.name,
                "effect": a.effect,
                "reason": a.reason,
                "campaign": a.campaign,
                "currency": a.currency,
                "amount": None if a.amount is None else str(a.amount),
                "lines": list(a.lines),
            }
            for a in f.applied
        ]
        + [
            {
                "key": f"reward:{reward.code}",
                "version": None,
                "name": reward.name.ru,
                "effect": "reward_price",
                "reason": (
                    f"{plain(reward.cost.amount * f.lines[i].quantity)} {reward.cost.currency} "
                    f"for {fmt(reward.gives.price or ZERO, m)} a unit"
                ),
                "campaign": None,
                "currency": f.program.spec.base_currency,
                "amount": fmt(discount, m),
                "lines": [f.lines[i].line_no],
            }
            for i, (reward, discount) in f.rewards.items()
        ],
        "warnings": f.warnings,
        "lines": lines,
    }


def _quote_id(f: Figures) -> str:
    raw = json.dumps([f.program.digest, f.json], sort_keys=True, separators=(",", ":"))
    mac = hmac.new(get_settings().secret_key.encode(), raw.encode(), hashlib.sha256).digest()
    return "q_" + base64.urlsafe_b64encode(mac[:18]).decode()


def _what_if(
    session: Session,
    body: PurchaseIn,
    principal: Principal,
    program: Program,
    *,
    caller: str | None = None,
    member_override: engine.MemberContext | None = None,
    trace: bool = False,
) -> Figures:
    """The figures of a receipt that is not recorded (limits as warnings), the session
    rolled back: what ``calculate`` and ``simulate`` answer with."""
    member, partner = _resolve(session, body, program, principal)
    fig = figure(
        session,
        body,
        program,
        member.id if member else None,
        partner,
        strict=False,
        member_ctx=member_override
        if member is None
        else member_context(session, member, program, body.occurred_at),
        caller=caller,
        trace=trace,
    )
    session.rollback()
    return fig


def calculate(session: Session, body: PurchaseIn, principal: Principal) -> dict[str, Any]:
    """The figures of a receipt, with no side effects."""
    fig = _what_if(session, body, principal, current_program(session), caller=principal.actor)
    return {**fig.json, "quote_id": fig.quote_id}


def simulate(
    session: Session,
    body: PurchaseIn,
    principal: Principal,
    program: Program | None = None,
    member_override: engine.MemberContext | None = None,
) -> dict[str, Any]:
    """The figures of a receipt under the programme in force or a draft ``program``, with
    every rule's verdict (fired or not, and why). Writes nothing; unknown coupon codes do
    not count against the caller. ``member_override``: a hypothetical member's context for a
    receipt without a member (no redemption then)."""
    program = program or current_program(session)
    fig = _what_if(session, body, principal, program, member_override=member_override, trace=True)
    verdicts = fig.trace or []
    versions = fig.rules.versions if fig.rules is not None else {}
    if fig.rules is not None:  # in order of evaluation, the tier's benefits last
        order = {r.key: i for i, r in enumerate(fig.rules.rules)}
        verdicts = sorted(verdicts, key=lambda v: order.get(v.key, len(order)))
    return {
        **fig.json,
        "program_version": program.version or None,
        "rules": [
            {
                "key": v.key,
                "version": versions.get(v.key),
                "name": v.name,
                "effect": v.effect,
                "fired": v.fired,
                "reason": v.reason,
            }
            for v in verdicts
        ],
    }


def check_quote(body: PurchaseIn, fig: Figures) -> None:
    """409 ``quote_changed`` when the till confirms figures other than those it showed."""
    if body.quote_id is not None and body.quote_id != fig.quote_id:
        raise Problem(
            409,
            "quote_changed",
            "the figures changed since they were shown to the customer",
            extra={"quote": {**fig.json, "quote_id": fig.quote_id}},
        )


def touched(program: Program, body: PurchaseIn, session: Session) -> list[str]:
    """The currencies a receipt may move: the one redeemed, those the rules earn (with
    coupons, any: a coupon may earn any currency) and the costs of rewards sold on it."""
    if body.coupons:
        return sorted(c.code for c in program.spec.currencies)
    codes = set(compiled_rules(program, session).earn_currencies)
    if body.redeem is not None:
        codes.add(body.redeem.currency)
    for ln in body.lines:
        if ln.reward is not None:
            reward = program.spec.reward(ln.reward)
            if reward is not None and program.spec.currency(reward.cost.currency) is not None:
                codes.add(reward.cost.currency)
    return sorted(codes)


def reward_lines(
    session: Session,
    body: PurchaseIn,
    program: Program,
    member_id: uuid.UUID | None,
    strict: bool,
    warnings: list[dict[str, Any]],
) -> dict[int, tuple[RewardSpec, Decimal]]:
    """The lines sold as rewards of the catalogue (0-based index → the reward), checked:
    a reward of the programme (422 naming ``lines[i].reward``), sold at the till, within
    its dates, to a member, in whole units; the member's balance of its cost
    (``insufficient_balance``) and the stock left (``reward_unavailable``): errors when
    ``strict``, else warnings. The stock is the rewards' to take (their hook, when the
    receipt is written)."""
    spec = program.spec
    day = body.occurred_at.astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    out: dict[int, tuple[RewardSpec, Decimal]] = {}
    need: dict[str, Decimal] = {}
    units: dict[str, int] = {}
    for i, ln in enumerate(body.lines):
        if ln.reward is None:
            continue
        at = f"lines[{i}].reward"
        reward = spec.reward(ln.reward)
        if reward is None:
            raise validation_problem([field_error(at, f"no reward {ln.reward!r}", "unknown")])
        if not reward.gives.at_till:
            raise validation_problem(
                [
                    field_error(
                        at, f"reward {reward.code!r} is a coupon, claimed in the app", "not_at_till"
                    )
                ]
            )
        if member_id is None:
            raise validation_problem([field_error(at, "a reward is sold to a member", "no_member")])
        if ln.quantity != ln.quantity.to_integral_value():
            raise validation_problem(
                [field_error(f"lines[{i}].quantity", "a reward is sold in whole units", "integer")]
            )
        if not reward.available.holds_on(day):
            raise Problem(
                422,
                "reward_unavailable",
                f"reward {reward.code!r} cannot be had on {day.isoformat()}",
                errors=[field_error(at, "outside the reward's dates", "reward_unavailable")],
            )
        units[reward.code] = units.get(reward.code, 0) + int(ln.quantity)
        left = _stock_left(session, reward.code) if _stock_left is not None else None
        if left is not None and units[reward.code] > left:
            problem = Problem(
                422,
                "reward_unavailable",
                f"reward {reward.code!r}: {left} left",
                errors=[field_error(at, "out of stock", "reward_unavailable")],
            )
            if strict:
                raise problem
            warnings.append({"code": problem.code, "field": at, "message": problem.detail})
        out[i] = (reward, ZERO)
        cost = reward.cost.amount * ln.quantity
        code = reward.cost.currency
        need[code] = need.get(code, ZERO) + cost
        have = ledger.redeemable(session, member_id, code)
        if need[code] > have:
            cur = spec.currency(code)
            p = cur.precision if cur is not None else 0
            message = f"the reward costs {fmt(cost, p)} {code}; the member has {fmt(have, p)}"
            if need[code] > cost:
                message += f", {fmt(need[code] - cost, p)} of it for the rewards before"
            if strict:
                raise Problem(
                    422,
                    "insufficient_balance",
                    message,
                    errors=[field_error(at, message, "insufficient_balance")],
                    extra={"available": fmt(have, p)},
                )
            warnings.append({"code": "insufficient_balance", "field": at, "message": message})
    return out
