"""Cancels and returns: what a receipt gave is taken back in proportion to what comes
back, the money refunded, the points redeemed given back, exactly, once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error
from kopilka.core.money import (
    ZERO,
    fmt,
    plain,
)
from kopilka.core.principal import Principal
from kopilka.core.split import prorate
from kopilka.ledger import service as ledger
from kopilka.program.service import current_program
from kopilka.purchases import hooks
from kopilka.purchases.confirmation import emit_purchase, purchase_json
from kopilka.purchases.figures import MONEY_PRECISION, precision_of
from kopilka.purchases.holds import (
    earned_by_currency,
    entry_of,
    lock_member,
    release,
    release_draws,
)
from kopilka.purchases.models import (
    Purchase,
    PurchaseLine,
    PurchaseReturn,
    ReturnLine,
)
from kopilka.purchases.queries import get_purchase
from kopilka.purchases.schemas import ReturnIn


def cancel(session: Session, purchase_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Release a hold, or reverse everything of a confirmed purchase not yet returned.
    Idempotent: cancelling twice changes nothing the second time."""
    p = get_purchase(session, purchase_id, principal, lock=True)
    if p.status in ("cancelled", "released"):
        return purchase_json(p)
    if p.status == "held":
        release(session, p, principal.actor)
        session.flush()
        return purchase_json(p)
    lock_member(session, p)
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
    release_draws(session, p.id)
    p.status = "cancelled"
    p.cancelled_at = now()
    emit_purchase(session, p, "purchase.cancelled", {"refund_due": fmt(refund, MONEY_PRECISION)})
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
    earned = earned_by_currency(session, p.id)
    rp = precision_of(program, p.redeem_currency) if p.redeem_currency else 2
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
            v = part(amounts[ln.line_no - 1], precision_of(program, c))
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
                    {"currency": c, "amount": fmt(v, precision_of(program, c))}
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
    hooks.reverse(
        session,
        hooks.Reversed(
            p.id,
            p.member_id,
            kind,
            key,
            fig["refund"],
            p.store,
            p.occurred_at,
            current_program(session),
            tuple(
                hooks.ReversedLine(ln["line_no"], Decimal(ln["quantity"]), Decimal(ln["refund"]))
                for ln in fig["lines"]
            ),
            dict(fig["revoked"]),
        ),
    )
    if p.member_id is None:
        return
    if fig["restored"] > 0 and p.redeem_currency:
        redeem = entry_of(session, f"purchase:{p.id}:redeem")
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
            earn_entry = entry_of(session, f"purchase:{p.id}:earn:{c}")
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
    lock_member(session, p)
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
            {"currency": c, "amount": fmt(v, precision_of(program, c))}
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
        release_draws(session, p.id)
    emit_purchase(session, p, "purchase.returned", {"return": _return_json(ret)})
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
