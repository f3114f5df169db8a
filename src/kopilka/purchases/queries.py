"""Reading purchases: one by id, a page of them, and what other parts read of the
purchases' tables (the console's member page)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core import pagination
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.purchases.confirmation import purchase_json
from kopilka.purchases.models import (
    Purchase,
    PurchaseReturn,
)


def returns_by_purchase(
    session: Session, purchase_ids: Sequence[uuid.UUID]
) -> dict[str, list[PurchaseReturn]]:
    """The returns of each of these purchases (by the purchase's id as text), oldest first."""
    returns: dict[str, list[PurchaseReturn]] = {}
    if not purchase_ids:
        return returns
    for r in session.execute(
        select(PurchaseReturn)
        .where(PurchaseReturn.purchase_id.in_(list(purchase_ids)))
        .order_by(PurchaseReturn.created_at)
    ).scalars():
        returns.setdefault(str(r.purchase_id), []).append(r)
    return returns


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


# ---------------------------------------------------------------------------- for privacy

# The page a member's export reads their purchases in.
EXPORT_PAGE = 200


def export_member(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every purchase of a member, newest first: their export's ``purchases``
    (``members.privacy``, through ``kopilka.wiring``)."""
    return pagination.all_pages(
        lambda c: list_purchases(session, member_id=member_id, cursor=c, limit=EXPORT_PAGE)
    )
