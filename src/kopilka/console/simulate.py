"""A dry run of a draft programme's rules on a sample receipt (the console's simulate →
publish flow). Runs the rules engine's pure functions; writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kopilka.core.dates import timestamp_error
from kopilka.core.errors import Problem, field_error
from kopilka.rules import engine
from kopilka.spec.program import ProgramSpec

SAMPLE_RECEIPT = {
    "store": None,
    "channel": "pos",
    "member": {"tier": None},
    "lines": [
        {"sku": "MILK-1L", "category": "dairy", "quantity": "2", "unit_price": "89.90"},
        {"sku": "COFFEE-250", "category": "grocery", "quantity": "1", "unit_price": "450.00"},
    ],
}


def sample_receipt(spec: ProgramSpec) -> str:
    doc = dict(SAMPLE_RECEIPT)
    doc["store"] = spec.stores[0].code if spec.stores else "store-1"
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _bad(field: str, message: str) -> Problem:
    return Problem(
        422,
        "validation_error",
        "the sample receipt is not valid",
        errors=[field_error(field, message)],
    )


def _decimal(raw: Any, field: str) -> Decimal:
    try:
        d = Decimal(str(raw))
    except InvalidOperation as exc:
        raise _bad(field, "a decimal number") from exc
    if not d.is_finite() or d <= 0:
        raise _bad(field, "more than zero")
    return d


def _receipt(spec: ProgramSpec, text: str) -> engine.ReceiptContext:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad("receipt", f"not JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list) or not doc["lines"]:
        raise _bad("receipt.lines", "at least one line")
    lines = []
    for i, raw in enumerate(doc["lines"]):
        if not isinstance(raw, dict) or not raw.get("sku"):
            raise _bad(f"receipt.lines[{i}].sku", "required")
        qty = _decimal(raw.get("quantity", "1"), f"receipt.lines[{i}].quantity")
        price = _decimal(raw.get("unit_price"), f"receipt.lines[{i}].unit_price")
        lines.append(
            engine.LineIn(
                line_no=i + 1,
                sku=str(raw["sku"]),
                name=raw.get("name"),
                category=raw.get("category"),
                quantity=qty,
                unit_price=price,
                amount=(qty * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
            )
        )
    store = str(doc.get("store") or "")
    partner = next((s.partner for s in spec.stores if s.code == store), None)
    member_doc = doc.get("member")
    member = None
    if isinstance(member_doc, dict):
        member = engine.MemberContext(
            id=uuid.UUID(int=0),
            tier=member_doc.get("tier") or None,
            purchases_count=int(member_doc.get("purchases_count") or 0),
        )
    occurred = dt.datetime.now(dt.UTC)
    if doc.get("occurred_at"):
        try:
            occurred = dt.datetime.fromisoformat(str(doc["occurred_at"]))
        except ValueError as exc:
            raise _bad("receipt.occurred_at", "RFC 3339 with an offset") from exc
        if (error := timestamp_error(occurred)) is not None:
            raise _bad("receipt.occurred_at", error[1])
    return engine.ReceiptContext(
        store=store,
        partner=partner,
        channel=str(doc.get("channel") or "pos"),
        occurred_at=occurred,
        timezone=spec.timezone,
        lines=tuple(lines),
        member=member,
    )


def simulate(spec: ProgramSpec, receipt_text: str) -> dict[str, Any]:
    """Which rules of ``spec`` fire on the receipt, and what they give, line by line."""
    ctx = _receipt(spec, receipt_text)
    rules = engine.compile_rules(spec)
    pricing = engine.price(rules, ctx)
    paid = [ln.amount - d for ln, d in zip(ctx.lines, pricing.line_discounts, strict=True)]
    earning = engine.earn(rules, ctx, pricing, paid)
    applied = [*pricing.applied, *earning.applied]
    return {
        "lines": [
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "amount": ln.amount,
                "discount": pricing.line_discounts[i],
                "paid": paid[i],
                "earned": {c: per[i] for c, per in earning.earned.items() if per[i]},
            }
            for i, ln in enumerate(ctx.lines)
        ],
        "earned": {c: sum(per, Decimal(0)) for c, per in earning.earned.items()},
        "discount": sum(pricing.line_discounts, Decimal(0)),
        "applied": [
            {
                "name": a.name,
                "effect": a.effect,
                "reason": a.reason,
                "currency": a.currency,
                "amount": a.amount,
            }
            for a in applied
        ],
    }
