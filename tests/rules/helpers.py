"""Building programmes and receipts for the pure engine tests."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from kopilka.core.money import round_half_up
from kopilka.program.service import validate_program
from kopilka.rules import engine

MSK = dt.timezone(dt.timedelta(hours=3))
# a Saturday, 10:00 in Moscow
SAT = dt.datetime(2026, 11, 28, 10, 0, tzinfo=MSK)


def program(rules: list[dict[str, Any]], **extra: Any) -> engine.CompiledRules:
    doc: dict[str, Any] = {
        "name": "Engine test",
        "timezone": "Europe/Moscow",
        "currencies": [
            {"code": "BONUS", "name": "Bonus", "precision": 2, "redeem_max_share": "0.5"},
            {"code": "STAMP", "name": "Stamps", "precision": 0, "value": "0"},
        ],
        "stores": [
            {"code": "msk-01", "name": "A"},
            {"code": "msk-02", "name": "B"},
            {"code": "p-1", "name": "P", "partner": "acme"},
        ],
        "rules": rules,
        **extra,
    }
    return engine.compile_rules(validate_program(doc))


def line(sku: str, price: str, qty: str = "1", category: str | None = None) -> engine.LineIn:
    q, p = Decimal(qty), Decimal(price)
    return engine.LineIn(0, sku, sku, category, q, p, round_half_up(q * p, 2))


def receipt(
    *lines: engine.LineIn,
    member: engine.MemberContext | None = None,
    at: dt.datetime = SAT,
    store: str = "msk-01",
    channel: str = "pos",
    partner: str | None = None,
    spent: dict[str, Decimal] | None = None,
) -> engine.ReceiptContext:
    numbered = tuple(
        engine.LineIn(i + 1, ln.sku, ln.name, ln.category, ln.quantity, ln.unit_price, ln.amount)
        for i, ln in enumerate(lines)
    )
    return engine.ReceiptContext(
        store=store,
        partner=partner,
        channel=channel,
        occurred_at=at,
        timezone="Europe/Moscow",
        lines=numbered,
        member=member,
        campaign_spent=spent or {},
    )


def member(**kw: Any) -> engine.MemberContext:
    return engine.MemberContext(id=uuid.UUID(int=1), **kw)


def run(
    rules: engine.CompiledRules, ctx: engine.ReceiptContext
) -> tuple[engine.Pricing, engine.Earning, list[Decimal]]:
    """Both phases with no redemption: paid = amount − discount."""
    pricing = engine.price(rules, ctx, trace=True)
    paid = [ln.amount - d for ln, d in zip(ctx.lines, pricing.line_discounts, strict=True)]
    return pricing, engine.earn(rules, ctx, pricing, paid), paid


def earned(e: engine.Earning, currency: str = "BONUS") -> list[str]:
    return [str(a) for a in e.earned.get(currency, [])]


def fired(p: engine.Pricing) -> list[str]:
    return [v.key for v in p.trace or [] if v.fired]


def why(p: engine.Pricing, key: str) -> str:
    return next(v.reason for v in p.trace or [] if v.key == key and not v.fired)
