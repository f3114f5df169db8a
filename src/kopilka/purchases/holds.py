"""Holds: a held receipt's commit (its reserved points spent, its earning made), its
release (the points given back, its coupon uses and caps freed), on request or when it
expires.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.errors import Problem
from kopilka.core.money import (
    ZERO,
)
from kopilka.core.principal import Principal
from kopilka.coupons import redeem as coupons
from kopilka.ledger import queries as ledger_queries
from kopilka.ledger import service as ledger
from kopilka.program.service import current_program
from kopilka.purchases import hooks
from kopilka.purchases.confirmation import purchase_json, settle_hold
from kopilka.purchases.models import (
    LineEarning,
    Purchase,
    PurchaseLine,
)
from kopilka.purchases.queries import get_purchase
from kopilka.purchases.schemas import CommitIn
from kopilka.rules import service as rules_service


def release_draws(session: Session, purchase_id: uuid.UUID) -> None:
    """Give back what a purchase drew on beside the ledger, when it is cancelled, its hold
    released or it is returned in full: its coupon uses, and what its rules took from
    per-member caps and campaign budgets."""
    coupons.release(session, purchase_id)
    rules_service.release(session, purchase_id)


def earned_by_currency(session: Session, purchase_id: uuid.UUID) -> dict[str, list[Decimal]]:
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


def lock_member(session: Session, p: Purchase) -> dict[str, Any]:
    """Lock the purchase's member's wallets (``ledger.lock_member``), by currency."""
    if p.member_id is None:
        return {}
    program = current_program(session)
    return dict(
        ledger.lock_member(
            session, p.member_id, program.spec, [c.code for c in program.spec.currencies]
        )
    )


def release(session: Session, p: Purchase, actor: str) -> None:
    """Give a hold's reserved points back (the same lots) and mark it released."""
    lock_member(session, p)
    redeem = entry_of(session, f"purchase:{p.id}:redeem")
    if redeem is not None and ledger.reversible(session, redeem) > 0:
        ledger.reverse(
            session,
            redeem.id,
            key=f"purchase:{p.id}:release",
            actor=actor,
            kind="release",
            description=f"hold of receipt {p.external_id} released",
        )
    release_draws(session, p.id)
    hooks.after_released(session, p.id, p.member_id)
    p.status = "released"
    p.cancelled_at = now()


def entry_of(session: Session, key: str) -> ledger_queries.Entry | None:
    return ledger_queries.entry_with_key(session, key)


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
        release(session, p, "system:hold-expiry")
        session.commit()
        raise Problem(409, "purchase_state_conflict", "the hold expired and was released")
    accounts = lock_member(session, p)
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
    settle_hold(session, p, earned_by_currency(session, p.id), accounts, principal.actor)
    p.status = "confirmed"
    p.settled_at = now()
    p.receipt_number = body.receipt_number
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
            release(session, p, "system:hold-expiry")
            done += 1
    session.flush()
    return done
