"""Purchases: calculate → confirm (or hold → commit) → cancel / return.

The figures of a receipt come from one function, ``figure``, used by calculate and
confirm alike, so a till is never charged other figures than it showed. Money is rounded
to 0.01 (half up for line amounts; redemption and earning split exactly across lines);
points to their currency's precision (earning rounded down per line).

Concurrency: confirm locks the member's wallets before it reads the balance, so two tills
redeeming from one member are serialised; ``(store, external_id)`` is unique, so a receipt
sent twice, even at the same instant, is recorded once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.core import pagination
from kopilka.core.config import get_settings
from kopilka.core.db import db_key, now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import (
    ZERO,
    fits_precision,
    fmt,
    plain,
    round_down,
)
from kopilka.core.principal import Principal
from kopilka.core.split import allocate, prorate
from kopilka.coupons import redeem as coupons
from kopilka.coupons.models import Coupon, CouponPool, CouponUse
from kopilka.events.service import emit, emit_many
from kopilka.ledger import planner as ledger_planner
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Entry
from kopilka.members import service as members
from kopilka.members.models import Member
from kopilka.program.service import Program, current_program
from kopilka.purchases import hooks
from kopilka.purchases.models import (
    LineEarning,
    Purchase,
    PurchaseLine,
    PurchaseReturn,
    ReturnLine,
)
from kopilka.purchases.schemas import CommitIn, PurchaseIn, ReturnIn
from kopilka.rules import engine
from kopilka.rules import service as rules_service
from kopilka.tiers.service import on_purchase  # up a tier at once if reached

MONEY_PRECISION = 2
CENT = Decimal("0.01")


# ---------------------------------------------------------------------------- rules cache

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


# ---------------------------------------------------------------------------- figures


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
    json: dict[str, Any] = field(default_factory=dict)
    quote_id: str = ""


def _precision(program: Program, code: str) -> int:
    cur = program.spec.currency(code)
    return cur.precision if cur else MONEY_PRECISION


def request_hash(body: PurchaseIn) -> str:
    data = body.model_dump(mode="json", exclude={"quote_id"})
    data["occurred_at"] = body.occurred_at.astimezone(dt.UTC).isoformat()
    for line in data["lines"]:
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
        Decimal(amount), _precision(program, body.redeem.currency)
    ):
        raise validation_problem(
            [
                field_error(
                    "redeem.amount",
                    f"{body.redeem.currency} has "
                    f"{_precision(program, body.redeem.currency)} decimal places",
                    "precision",
                )
            ]
        )


def _member_context(
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
    the member (``_member_context``; a hypothetical member's in a simulation);
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
    redeemed = redeemed_value = ZERO
    line_redeemed = [ZERO] * n
    line_value = [ZERO] * n
    max_redeemable: Decimal | None = None
    known, available = available, None  # what the caller read, and what is reported
    warnings: list[dict[str, Any]] = []
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
                p = _precision(program, c)
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
    )
    fig.json = _figures_json(fig, body, code)
    fig.quote_id = _quote_id(fig)
    return fig


def _figures_json(f: Figures, body: PurchaseIn, limit_code: str | None) -> dict[str, Any]:
    m = MONEY_PRECISION
    rp = _precision(f.program, f.redeem_currency) if f.redeem_currency else 2
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
                    {"currency": c, "amount": fmt(a[i], _precision(f.program, c))}
                    for c, a in f.earned.items()
                ],
            }
        )
    limit_precision = _precision(f.program, limit_code) if limit_code else 2
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
                "amount": fmt(sum(a, ZERO), _precision(f.program, c)),
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
        ],
        "warnings": f.warnings,
        "lines": lines,
    }


def _quote_id(f: Figures) -> str:
    raw = json.dumps([f.program.digest, f.json], sort_keys=True, separators=(",", ":"))
    mac = hmac.new(get_settings().secret_key.encode(), raw.encode(), hashlib.sha256).digest()
    return "q_" + base64.urlsafe_b64encode(mac[:18]).decode()


# ---------------------------------------------------------------------------- calculate


def calculate(session: Session, body: PurchaseIn, principal: Principal) -> dict[str, Any]:
    """The figures of a receipt, with no side effects."""
    program = current_program(session)
    member, partner = _resolve(session, body, program, principal)
    fig = figure(
        session,
        body,
        program,
        member.id if member else None,
        partner,
        strict=False,
        member_ctx=_member_context(session, member, program, body.occurred_at),
        caller=principal.actor,
    )
    session.rollback()
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
        else _member_context(session, member, program, body.occurred_at),
        trace=True,
    )
    session.rollback()
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


# ---------------------------------------------------------------------------- confirm


def existing(session: Session, store: str, external_id: str) -> Purchase | None:
    return session.execute(
        select(Purchase).where(Purchase.store == store, Purchase.external_id == external_id)
    ).scalar_one_or_none()


def replay(found: Purchase, body_hash: str) -> tuple[int, dict[str, Any]]:
    if found.request_hash != body_hash:
        raise Problem(
            409,
            "duplicate_external_id",
            f"receipt {found.external_id!r} of store {found.store!r} was recorded with "
            "other content",
            errors=[field_error("external_id", "already used for another receipt", "duplicate")],
            extra={"purchase_id": str(found.id)},
        )
    return 200, purchase_json(found)


def purchase_json(p: Purchase) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "status": p.status,
        **p.figures,
        "hold_expires_at": p.hold_expires_at.isoformat() if p.hold_expires_at else None,
        "receipt_number": p.receipt_number,
        "created_at": p.created_at.isoformat(),
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


def receipt_rows(
    body: PurchaseIn, body_hash: str, program: Program, fig: Figures, principal: Principal
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows a confirmation writes beside the ledger: the receipt, its lines, what
    each line earned and the rules that gave something. Pure."""
    at = now()
    values: dict[str, Any] = {
        "id": uuid7(),
        "store": body.store,
        "external_id": body.external_id,
        "channel": body.channel,
        "member_id": fig.member_id,
        "occurred_at": body.occurred_at,
        "status": "held" if body.hold else "confirmed",
        "request_hash": body_hash,
        "program_version": program.version,
        "subtotal": Decimal(fig.json["subtotal"]),
        "discount": Decimal(fig.json["discount"]),
        "total_due": Decimal(fig.json["total_due"]),
        "redeem_currency": fig.redeem_currency if fig.redeemed > 0 else None,
        "redeemed": fig.redeemed,
        "redeemed_value": fig.redeemed_value,
        "hold_expires_at": at + dt.timedelta(minutes=program.spec.hold_minutes)
        if body.hold
        else None,
        "receipt_number": None,
        "figures": fig.json,
        "created_at": at,
        "settled_at": None if body.hold else at,
        "cancelled_at": None,
        "created_by": principal.actor,
    }
    # The first write. A receipt already recorded (a replay, or a twin that committed a
    # moment ago) is found by the unique index; nothing else has been written yet.
    lines = [
        {
            "line_no": ln.line_no,
            "sku": ln.sku,
            "name": ln.name,
            "category": ln.category,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "amount": ln.amount,
            "discount": fig.discounts[i],
            "redeemed": fig.line_redeemed[i],
            "redeemed_value": fig.line_redeemed_value[i],
            "total_due": fig.line_due[i],
        }
        for i, ln in enumerate(fig.lines)
    ]
    earnings = [
        {"line_no": i + 1, "currency": c, "amount": a}
        for c, amounts in fig.earned.items()
        for i, a in enumerate(amounts)
        if a > 0
    ]
    rule_rows = (
        rules_service.rule_rows(
            values["id"],
            fig.member_id,
            fig.rules,
            fig.applied,
            body.occurred_at,
            program.spec.timezone,
        )
        if fig.rules is not None and fig.applied
        else []
    )
    return values, lines, earnings, rule_rows


def settled(p: Purchase, earned: dict[str, list[Decimal]]) -> hooks.Settled:
    """What the receipt hooks are told of a settled receipt."""
    return hooks.Settled(
        p.id,
        p.member_id,
        p.store,
        p.occurred_at,
        p.total_due,
        {c: sum(a, ZERO) for c, a in earned.items()},
    )


def _emit_purchase(
    session: Session, p: Purchase, type_: str, extra: dict[str, Any] | None = None
) -> None:
    """The purchase's event, and the points it moved, in the purchase's transaction (one
    statement unless the receipt carries coupon codes)."""
    batch = purchase_events(p, type_, extra)
    if type_ == "purchase.confirmed" and any(
        c.get("status") == "applied" for c in p.figures["coupons"]
    ):
        emit_many(session, batch[:1])  # the receipt's event first, then its codes'
        batch = batch[1:]
        emit_coupons(session, p)  # a query only for receipts that carry a code
    emit_many(session, batch)


def purchase_events(
    p: Purchase, type_: str, extra: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any], uuid.UUID | None]]:
    """The purchase's event ``(type, data, member_id)`` and, when it is confirmed, the
    ``points.earned`` and ``points.redeemed`` of its member, in this order. Pure."""
    f = p.figures
    events: list[tuple[str, dict[str, Any], uuid.UUID | None]] = [
        (
            type_,
            {
                "purchase_id": str(p.id),
                "store": p.store,
                "external_id": p.external_id,
                "channel": p.channel,
                "member_id": str(p.member_id) if p.member_id else None,
                "occurred_at": p.occurred_at.isoformat(),
                "subtotal": f["subtotal"],
                "discount": f["discount"],
                "total_due": f["total_due"],
                "redeemed": f["redeemed"],
                "earned": f["earned"],
                **(extra or {}),
            },
            p.member_id,
        )
    ]
    if p.member_id is not None and type_ == "purchase.confirmed":
        mid = str(p.member_id)
        events += [
            ("points.earned", {"member_id": mid, "purchase_id": str(p.id), **e}, p.member_id)
            for e in f["earned"]
        ]
        events += [
            ("points.redeemed", {"member_id": mid, "purchase_id": str(p.id), **r}, p.member_id)
            for r in f["redeemed"]
        ]
    return events


def emit_coupons(session: Session, p: Purchase) -> None:
    """``coupon.redeemed`` for every code the purchase holds (at confirm or commit)."""
    rows = session.execute(
        select(CouponUse, Coupon.code, CouponPool.name)
        .join(Coupon, Coupon.id == CouponUse.coupon_id)
        .join(CouponPool, CouponPool.id == CouponUse.pool_id)
        .where(CouponUse.purchase_id == p.id, CouponUse.released_at.is_(None))
        .order_by(CouponUse.coupon_id)
    ).all()
    for use, code, pool_name in rows:
        emit(
            session,
            "coupon.redeemed",
            {
                "member_id": str(p.member_id) if p.member_id else None,
                "coupon_id": use.coupon_id,
                "code": code,
                "pool": pool_name,
                "pool_id": str(use.pool_id),
                "purchase_id": str(p.id),
                "discount": fmt(use.discount, MONEY_PRECISION),
            },
            member_id=p.member_id,
        )


def _release_draws(session: Session, purchase_id: uuid.UUID) -> None:
    """Give back what a purchase drew on beside the ledger, when it is cancelled, its hold
    released or it is returned in full: its coupon uses, and what its rules took from
    per-member caps and campaign budgets."""
    coupons.release(session, purchase_id)
    rules_service.release(session, purchase_id)


def touched(program: Program, body: PurchaseIn, session: Session) -> list[str]:
    """The currencies a receipt may move: the one redeemed and those the rules earn
    (with coupons, any: a coupon may earn any currency)."""
    if body.coupons:
        return sorted(c.code for c in program.spec.currencies)
    codes = set(compiled_rules(program, session).earn_currencies)
    if body.redeem is not None:
        codes.add(body.redeem.currency)
    return sorted(codes)


def _credit_earnings(
    session: Session,
    purchase: Purchase,
    earned: dict[str, list[Decimal]],
    actor: str,
    fresh: bool = False,
) -> None:
    if purchase.member_id is None:
        return
    tz = current_program(session).spec.timezone
    for c, amounts in earned.items():
        total = sum(amounts, ZERO)
        if total > 0:
            ledger.credit(
                session,
                key=f"purchase:{purchase.id}:earn:{c}",
                kind="earn",
                member_id=purchase.member_id,
                currency=c,
                amount=total,
                actor=actor,
                description=f"receipt {purchase.external_id} at {purchase.store}",
                occurred_at=purchase.occurred_at,
                purchase_id=purchase.id,
                tz=tz,
                fresh=fresh,
            )


# ---------------------------------------------------------------------------- holds


def get_purchase(
    session: Session, purchase_id: uuid.UUID, principal: Principal | None = None, lock: bool = False
) -> Purchase:
    q = select(Purchase).where(Purchase.id == purchase_id)
    if lock:
        q = q.with_for_update()
    p = session.execute(q.execution_options(populate_existing=True)).scalar_one_or_none()
    if p is None or (
        principal is not None and principal.store is not None and principal.store != p.store
    ):
        raise Problem(404, "purchase_not_found", f"no purchase {purchase_id}")
    return p


def _earned_by_currency(session: Session, purchase_id: uuid.UUID) -> dict[str, list[Decimal]]:
    rows = session.execute(
        select(LineEarning.currency, LineEarning.line_no, LineEarning.amount).where(
            LineEarning.purchase_id == purchase_id
        )
    ).all()
    n = session.execute(
        select(func.count())
        .select_from(PurchaseLine)
        .where(PurchaseLine.purchase_id == purchase_id)
    ).scalar_one()
    out: dict[str, list[Decimal]] = {}
    for c, line_no, amount in rows:
        out.setdefault(c, [ZERO] * n)[line_no - 1] = amount
    return out


def _lock_member(session: Session, p: Purchase) -> None:
    if p.member_id is not None:
        program = current_program(session)
        ledger.lock_member(
            session, p.member_id, program.spec, [c.code for c in program.spec.currencies]
        )


def _release(session: Session, p: Purchase, actor: str) -> None:
    """Give a hold's reserved points back (the same lots) and mark it released."""
    _lock_member(session, p)
    redeem = _entry(session, f"purchase:{p.id}:redeem")
    if redeem is not None and ledger.reversible(session, redeem) > 0:
        ledger.reverse(
            session,
            redeem.id,
            key=f"purchase:{p.id}:release",
            actor=actor,
            kind="release",
            description=f"hold of receipt {p.external_id} released",
        )
    _release_draws(session, p.id)
    p.status = "released"
    p.cancelled_at = now()


def _entry(session: Session, key: str) -> Entry | None:
    return session.execute(select(Entry).where(Entry.key == key)).scalar_one_or_none()


def commit(
    session: Session, purchase_id: uuid.UUID, body: CommitIn, principal: Principal
) -> dict[str, Any]:
    """Settle a hold: the reserved points are spent and the earning happens. Idempotent."""
    p = get_purchase(session, purchase_id, principal, lock=True)
    if p.status == "confirmed":
        return purchase_json(p)
    if p.status != "held":
        raise Problem(409, "purchase_state_conflict", f"the purchase is {p.status}")
    if p.hold_expires_at is not None and p.hold_expires_at <= now():
        _release(session, p, "system:hold-expiry")
        session.commit()
        raise Problem(409, "purchase_state_conflict", "the hold expired and was released")
    _lock_member(session, p)
    if p.redeem_currency and p.redeemed > 0:
        ledger.move_system(
            session,
            key=f"purchase:{p.id}:settle",
            currency=p.redeem_currency,
            amount=p.redeemed,
            from_kind="held",
            to_kind="redemption",
            actor=principal.actor,
            member_id=p.member_id,
            purchase_id=p.id,
            description=f"hold of receipt {p.external_id} settled",
        )
    earned = _earned_by_currency(session, p.id)
    _credit_earnings(session, p, earned, principal.actor)
    hooks.settle(session, settled(p, earned))
    p.status = "confirmed"
    p.settled_at = now()
    p.receipt_number = body.receipt_number
    _emit_purchase(session, p, "purchase.confirmed")
    if p.member_id is not None:
        on_purchase(session, p.member_id, p.occurred_at)
    session.flush()
    return purchase_json(p)


def release_expired_holds(session: Session, at: dt.datetime | None = None, limit: int = 500) -> int:
    """Release holds not committed in time (a scheduled job; safe to run concurrently)."""
    at = at or now()
    ids = (
        session.execute(
            select(Purchase.id)
            .where(Purchase.status == "held", Purchase.hold_expires_at <= at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    done = 0
    for pid in ids:
        p = get_purchase(session, pid, lock=True)
        if p.status == "held":
            _release(session, p, "system:hold-expiry")
            done += 1
    session.flush()
    return done


# ---------------------------------------------------------------------------- cancel, returns


def cancel(session: Session, purchase_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Release a hold, or reverse everything of a confirmed purchase not yet returned.
    Idempotent: cancelling twice changes nothing the second time."""
    p = get_purchase(session, purchase_id, principal, lock=True)
    if p.status in ("cancelled", "released"):
        return purchase_json(p)
    if p.status == "held":
        _release(session, p, principal.actor)
        session.flush()
        return purchase_json(p)
    _lock_member(session, p)
    returned = _returned_qty(session, p.id)
    lines = _lines(session, p.id)
    rest = [(ln.line_no, ln.quantity - returned.get(ln.line_no, ZERO)) for ln in lines]
    rest = [(no, q) for no, q in rest if q > 0]
    refund = ZERO
    if rest:
        fig = _return_figures(session, p, lines, returned, dict(rest))
        refund = fig["refund"]
        _post_return(
            session, p, fig, key=f"purchase:{p.id}:cancel", kind="cancel", actor=principal.actor
        )
    _release_draws(session, p.id)
    p.status = "cancelled"
    p.cancelled_at = now()
    _emit_purchase(session, p, "purchase.cancelled", {"refund_due": fmt(refund, MONEY_PRECISION)})
    session.flush()
    return {**purchase_json(p), "refund_due": fmt(refund, MONEY_PRECISION)}


def _lines(session: Session, purchase_id: uuid.UUID) -> list[PurchaseLine]:
    return list(
        session.execute(
            select(PurchaseLine)
            .where(PurchaseLine.purchase_id == purchase_id)
            .order_by(PurchaseLine.line_no)
        ).scalars()
    )


def _returned_qty(session: Session, purchase_id: uuid.UUID) -> dict[int, Decimal]:
    rows = session.execute(
        select(ReturnLine.line_no, func.sum(ReturnLine.quantity))
        .where(ReturnLine.purchase_id == purchase_id)
        .group_by(ReturnLine.line_no)
    ).all()
    return {no: Decimal(q) for no, q in rows}


def _return_figures(
    session: Session,
    p: Purchase,
    lines: list[PurchaseLine],
    before: dict[int, Decimal],
    now_q: dict[int, Decimal],
) -> dict[str, Any]:
    """What this return gives back, computed cumulatively: the figures for everything
    returned including it, less the figures for everything returned before it."""
    program = current_program(session)
    earned = _earned_by_currency(session, p.id)
    rp = _precision(program, p.redeem_currency) if p.redeem_currency else 2
    out_lines = []
    refund = restored = ZERO
    revoked: dict[str, Decimal] = {}
    for ln in lines:
        q = now_q.get(ln.line_no)
        if q is None:
            continue
        old = before.get(ln.line_no, ZERO)
        new = old + q

        def part(
            full: Decimal, prec: int, old: Decimal = old, new: Decimal = new, ln: PurchaseLine = ln
        ) -> Decimal:
            return prorate(full, new, ln.quantity, prec) - prorate(full, old, ln.quantity, prec)

        r = part(ln.total_due, MONEY_PRECISION)
        pr = part(ln.redeemed, rp)
        line_revoked = {}
        for c, amounts in earned.items():
            v = part(amounts[ln.line_no - 1], _precision(program, c))
            if v:
                line_revoked[c] = v
                revoked[c] = revoked.get(c, ZERO) + v
        refund += r
        restored += pr
        out_lines.append(
            {
                "line_no": ln.line_no,
                "quantity": plain(q),
                "refund": fmt(r, MONEY_PRECISION),
                "points_restored": fmt(pr, rp),
                "points_revoked": [
                    {"currency": c, "amount": fmt(v, _precision(program, c))}
                    for c, v in line_revoked.items()
                ],
            }
        )
    return {
        "refund": refund,
        "restored": restored,
        "revoked": revoked,
        "lines": out_lines,
        "redeem_precision": rp,
    }


def _post_return(
    session: Session, p: Purchase, fig: dict[str, Any], key: str, kind: str, actor: str
) -> None:
    hooks.reverse(session, hooks.Reversed(p.id, p.member_id, kind, key, fig["refund"]))
    if p.member_id is None:
        return
    if fig["restored"] > 0 and p.redeem_currency:
        redeem = _entry(session, f"purchase:{p.id}:redeem")
        assert redeem is not None
        ledger.reverse(
            session,
            redeem.id,
            key=f"{key}:restore",
            actor=actor,
            kind=kind,
            amount=fig["restored"],
            counter="redemption",
            description=f"receipt {p.external_id}: points given back",
        )
    for c, amount in fig["revoked"].items():
        if amount > 0:
            earn_entry = _entry(session, f"purchase:{p.id}:earn:{c}")
            assert earn_entry is not None
            ledger.reverse(
                session,
                earn_entry.id,
                key=f"{key}:revoke:{c}",
                actor=actor,
                kind=kind,
                amount=amount,
                description=f"receipt {p.external_id}: points earned taken back",
            )


def create_return(
    session: Session, purchase_id: uuid.UUID, body: ReturnIn, principal: Principal
) -> tuple[int, dict[str, Any]]:
    """A return of some lines and quantities. 422 ``return_exceeds_purchase`` when more
    would be returned than was bought (counting earlier returns)."""
    p = get_purchase(session, purchase_id, principal, lock=True)
    body_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    found = session.execute(
        select(PurchaseReturn).where(
            PurchaseReturn.purchase_id == p.id, PurchaseReturn.external_id == body.external_id
        )
    ).scalar_one_or_none()
    if found is not None:
        if found.request_hash != body_hash:
            raise Problem(
                409,
                "duplicate_external_id",
                f"return {body.external_id!r} was recorded with other content",
                errors=[field_error("external_id", "already used", "duplicate")],
            )
        return 200, _return_json(found)
    if p.status != "confirmed":
        raise Problem(409, "purchase_not_returnable", f"the purchase is {p.status}")
    lines = {ln.line_no: ln for ln in _lines(session, p.id)}
    before = _returned_qty(session, p.id)
    wanted: dict[int, Decimal] = {}
    errors = []
    for i, rl in enumerate(body.lines):
        ln = lines.get(rl.line_no)
        if ln is None:
            errors.append(field_error(f"lines[{i}].line_no", f"no line {rl.line_no}", "unknown"))
            continue
        wanted[rl.line_no] = wanted.get(rl.line_no, ZERO) + rl.quantity
        left = ln.quantity - before.get(rl.line_no, ZERO)
        if wanted[rl.line_no] > left:
            errors.append(
                field_error(
                    f"lines[{i}].quantity",
                    f"only {left} of line {rl.line_no} left to return",
                    "exceeds",
                )
            )
    if errors:
        code = (
            "return_exceeds_purchase"
            if all(e["code"] == "exceeds" for e in errors)
            else "validation_error"
        )
        raise Problem(422, code, "the return does not match the purchase", errors=errors)
    _lock_member(session, p)
    ret_id = uuid.uuid4()
    fig = _return_figures(session, p, list(lines.values()), before, wanted)
    program = current_program(session)
    figures = {
        "refund_due": fmt(fig["refund"], MONEY_PRECISION),
        "points_restored": (
            [
                {
                    "currency": p.redeem_currency,
                    "amount": fmt(fig["restored"], fig["redeem_precision"]),
                }
            ]
            if p.redeem_currency and fig["restored"] > 0
            else []
        ),
        "points_revoked": [
            {"currency": c, "amount": fmt(v, _precision(program, c))}
            for c, v in fig["revoked"].items()
            if v > 0
        ],
        "lines": fig["lines"],
    }
    ret = PurchaseReturn(
        id=ret_id,
        purchase_id=p.id,
        external_id=body.external_id,
        request_hash=body_hash,
        refund_due=fig["refund"],
        figures=figures,
        created_by=principal.actor,
        created_at=now(),
    )
    session.add(ret)
    session.flush()
    for line_no, q in wanted.items():
        fl = next(x for x in fig["lines"] if x["line_no"] == line_no)
        session.add(
            ReturnLine(
                return_id=ret_id,
                line_no=line_no,
                purchase_id=p.id,
                quantity=q,
                refund=Decimal(fl["refund"]),
                points_restored=Decimal(fl["points_restored"]),
            )
        )
    _post_return(session, p, fig, key=f"return:{ret_id}", kind="return", actor=principal.actor)
    if all(before.get(no, ZERO) + wanted.get(no, ZERO) >= ln.quantity for no, ln in lines.items()):
        # Returned in full (in one return or several): the coupons' uses come back. A
        # partial return keeps them (the customer kept part of what the coupon paid for).
        _release_draws(session, p.id)
    _emit_purchase(session, p, "purchase.returned", {"return": _return_json(ret)})
    session.flush()
    return 201, _return_json(ret)


def _return_json(r: PurchaseReturn) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "purchase_id": str(r.purchase_id),
        "external_id": r.external_id,
        "created_at": r.created_at.isoformat(),
        **r.figures,
    }


def list_purchases(
    session: Session,
    *,
    member_id: uuid.UUID | None = None,
    store: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Purchases newest first (by id, which is time-ordered), filtered by member or store."""
    q = select(Purchase).order_by(Purchase.id.desc()).limit(limit + 1)
    if member_id is not None:
        q = q.where(Purchase.member_id == member_id)
    if store is not None:
        q = q.where(Purchase.store == store)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(Purchase.id < last)
    shown, nxt = pagination.page(list(session.execute(q).scalars()), limit)
    return [purchase_json(p) for p in shown], nxt
