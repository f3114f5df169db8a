"""Reading purchases: one by id, a page of them, and what other parts read of the
purchases' tables (the console's member page)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
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


# ---------------------------------------------------------------------------- for the rollup


def first_occurred_at() -> Select[dt.datetime | None]:
    """When the earliest receipt (of any status) occurred; None when there is none."""
    return select(func.min(Purchase.occurred_at))


def occurred_at_from(first_id: uuid.UUID) -> Select[dt.datetime]:
    """The distinct moments at which the receipts with ids from ``first_id`` on occurred;
    ids are time-ordered, so those recorded at its moment or later."""
    return select(Purchase.occurred_at).where(Purchase.id >= first_id).distinct()


def confirmed_between(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """The confirmed receipts that occurred from ``start`` (included) to ``end`` (not),
    read through the ``occurred_at`` index: their ``occurred_at``, ``member_id``,
    ``store``, ``channel``, ``total_due``, ``subtotal``, ``discount`` and
    ``redeemed_value``, labelled so, for a caller to pick and add up
    (``with_only_columns`` over its ``selected_columns``)."""
    columns: list[Any] = [
        Purchase.occurred_at.label("occurred_at"),
        Purchase.member_id.label("member_id"),
        Purchase.store.label("store"),
        Purchase.channel.label("channel"),
        Purchase.total_due.label("total_due"),
        Purchase.subtotal.label("subtotal"),
        Purchase.discount.label("discount"),
        Purchase.redeemed_value.label("redeemed_value"),
    ]
    return select(*columns).where(
        Purchase.status == "confirmed",
        Purchase.occurred_at >= start,
        Purchase.occurred_at < end,
    )


def with_store_and_channel(q: Select[Any], purchase_id: Any) -> Select[Any]:
    """``q`` with the receipt whose id is ``purchase_id`` (a column of ``q``'s rows)
    outer-joined, and its store and channel added as the last columns, labelled ``store``
    and ``channel`` (None where there is no such receipt)."""
    joined: Select[Any] = q.outerjoin(Purchase, Purchase.id == purchase_id).add_columns(
        Purchase.store.label("store"), Purchase.channel.label("channel")
    )
    return joined
