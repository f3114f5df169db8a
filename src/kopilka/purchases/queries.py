"""Reading purchases: one by id, a page of them, and what other parts read of the
purchases' tables: the console's member page, and the history that tiers, rules and the
velocity checks read.

Tiers, rules and the velocity checks cannot import this package (it moves a member's tier,
draws on rules and is scanned by the checks), so ``kopilka.wiring`` hands them the functions
of the section "the history" (``tiers.service.use_purchase_history``,
``rules.service.use_purchase_history``, ``security.velocity.use_purchases``)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Subquery, Uuid, bindparam, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from kopilka.core import pagination
from kopilka.core.db import Amount, member_window
from kopilka.core.errors import Problem
from kopilka.core.money import ZERO
from kopilka.core.principal import Principal
from kopilka.purchases.confirmation import purchase_json
from kopilka.purchases.models import Purchase, PurchaseLine, PurchaseReturn, ReturnLine


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


# ---------------------------------------------------------------------------- the history


def _kept() -> Any:
    """A purchase not returned in full: some line with more bought than returned."""
    returned = (
        select(func.coalesce(func.sum(ReturnLine.quantity), ZERO))
        .where(
            ReturnLine.purchase_id == PurchaseLine.purchase_id,
            ReturnLine.line_no == PurchaseLine.line_no,
        )
        .scalar_subquery()
    )
    return (
        select(PurchaseLine.line_no)
        .where(PurchaseLine.purchase_id == Purchase.id, PurchaseLine.quantity > returned)
        .exists()
    )


def _refunded() -> Any:
    """What the returns of a purchase refunded (``Amount`` units)."""
    return (
        select(func.coalesce(func.sum(PurchaseReturn.refund_due), 0))
        .where(PurchaseReturn.purchase_id == Purchase.id)
        .scalar_subquery()
    )


def _bought(member_ids: Sequence[uuid.UUID], start: dt.datetime, end: dt.datetime) -> Any:
    return (
        Purchase.member_id.in_(list(member_ids)),
        Purchase.status == "confirmed",
        Purchase.occurred_at >= start,
        Purchase.occurred_at <= end,
    )


def kept_counts(
    member_ids: Sequence[uuid.UUID], start: dt.datetime, end: dt.datetime
) -> Select[uuid.UUID | None, int]:
    """``(member_id, count)`` of each member's confirmed purchases with ``occurred_at`` in
    ``[start, end]``, less those returned in full (members without one left out)."""
    return (
        select(Purchase.member_id, func.count())
        .where(*_bought(member_ids, start, end), _kept())
        .group_by(Purchase.member_id)
    )


def paid_totals(
    member_ids: Sequence[uuid.UUID], start: dt.datetime, end: dt.datetime
) -> Select[Any]:
    """``(member_id, paid)``: money paid on each member's confirmed purchases with
    ``occurred_at`` in ``[start, end]``, less what their returns refunded, whenever made
    (``Amount`` units; members without one left out)."""
    refunded = _refunded()
    return (
        select(
            Purchase.member_id,
            # both in the units of ``Amount``, and so is their difference
            func.sum(Purchase.total_due - refunded, type_=Amount()),
        )
        .where(*_bought(member_ids, start, end))
        .group_by(Purchase.member_id)
    )


def kept_count_of_one(member: Any, start: Any, end: Any) -> Any:
    """``kept_counts`` of one member as a scalar subquery (``member``, ``start`` and
    ``end`` are SQL expressions, usually binds), served by ``ix_purchases_member``."""
    bought = (
        *member_window(Purchase.member_id, Purchase.occurred_at, member, start, end),
        Purchase.status == "confirmed",
    )
    return select(func.count()).where(*bought, _kept()).scalar_subquery()


def paid_of_one(member: Any, start: Any, end: Any) -> Any:
    """``paid_totals`` of one member as a scalar subquery (0 without a purchase)."""
    bought = (
        *member_window(Purchase.member_id, Purchase.occurred_at, member, start, end),
        Purchase.status == "confirmed",
    )
    refunded = _refunded()
    return (
        select(func.coalesce(func.sum(Purchase.total_due - refunded), 0))
        .where(*bought)
        .scalar_subquery()
    )


@functools.cache
def member_history() -> tuple[Select[int, Decimal], Select[Decimal], Select[int]]:
    """A member's confirmed purchases (count and total paid), what their returns
    refunded, and the count alone; bound as ``member_id`` and ``exclude`` (a purchase to
    leave out, or NULL). Built once: they run on every receipt when a rule looks at the
    history."""
    exclude = bindparam("exclude", type_=Uuid)
    mine = (
        Purchase.member_id == bindparam("member_id"),
        Purchase.status == "confirmed",
        or_(exclude.is_(None), Purchase.id != exclude),
    )
    count_total = select(func.count(), func.coalesce(func.sum(Purchase.total_due), 0)).where(*mine)
    refunds = (
        select(func.coalesce(func.sum(PurchaseReturn.refund_due), 0))
        .join(Purchase, Purchase.id == PurchaseReturn.purchase_id)
        .where(*mine)
    )
    return count_total, refunds, select(func.count()).where(*mine)


def recent_of_members(
    floor: uuid.UUID, limit: int
) -> Select[uuid.UUID, uuid.UUID | None, str, dt.datetime, Decimal]:
    """``(id, member_id, store, occurred_at, redeemed)`` of confirmed or held purchases
    with a member, recorded since the uuid7 ``floor`` (their id), oldest first, at most
    ``limit``: a caller narrows it further with ``.where`` over ``selected_columns.id``."""
    return (
        select(
            Purchase.id,
            Purchase.member_id,
            Purchase.store,
            Purchase.occurred_at,
            Purchase.redeemed,
        )
        .where(
            Purchase.id >= floor,
            Purchase.member_id.is_not(None),
            Purchase.status.in_(("confirmed", "held")),
        )
        .order_by(Purchase.id)
        .limit(limit)
    )


# ---------------------------------------------------------------------------- for the reports


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


def confirmed_ids_between(
    start: dt.datetime, end: dt.datetime, store: str | None = None, channel: str | None = None
) -> Subquery:
    """The confirmed purchases (``id``) that occurred from ``start`` (included) to ``end``
    (excluded), at ``store`` and through ``channel`` when given."""
    cond: list[Any] = [
        Purchase.status == "confirmed",
        Purchase.occurred_at >= start,
        Purchase.occurred_at < end,
    ]
    if store:
        cond.append(Purchase.store == store)
    if channel:
        cond.append(Purchase.channel == channel)
    return select(Purchase.id.label("id")).where(*cond).subquery()


# ---------------------------------------------------------------------------- for the referrals


def paid_with(
    session: Session, member_id: uuid.UUID, fingerprint: str, leaving_out: uuid.UUID
) -> bool:
    """Whether the member paid a receipt (other than ``leaving_out``) with the payment card
    whose fingerprint's digest is ``fingerprint``."""
    found = session.execute(
        select(Purchase.id)
        .where(
            Purchase.member_id == member_id,
            Purchase.payment_fingerprint == fingerprint,
            Purchase.id != leaving_out,
        )
        .limit(1)
    ).first()
    return found is not None


def paid_after_returns(session: Session, purchase_id: uuid.UUID) -> Decimal:
    """What stays paid of a receipt: its money paid less what its returns refunded."""
    refunded = (
        select(func.coalesce(func.sum(PurchaseReturn.refund_due), 0))
        .where(PurchaseReturn.purchase_id == purchase_id)
        .scalar_subquery()
    )
    total = session.execute(
        select(type_coerce(Purchase.total_due - refunded, Amount())).where(
            Purchase.id == purchase_id
        )
    ).scalar_one()
    return Decimal(total)


def paid_by_member_between(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """``(member_id, paid)``, labelled so: money paid on each member's confirmed receipts
    that occurred from ``start`` (included) to ``end`` (excluded), less what their returns
    refunded, whenever made (``Amount`` units; receipts without a member and members
    without a receipt left out). The referrals' report compares friends with the others."""
    refunded = _refunded()
    return (
        select(
            Purchase.member_id.label("member_id"),
            func.sum(Purchase.total_due - refunded, type_=Amount()).label("paid"),
        )
        .where(
            Purchase.member_id.is_not(None),
            Purchase.status == "confirmed",
            Purchase.occurred_at >= start,
            Purchase.occurred_at < end,
        )
        .group_by(Purchase.member_id)
    )


# ---------------------------------------------------------------------------- for privacy

# The page a member's export reads their purchases in.
EXPORT_PAGE = 200


def export_member(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every purchase of a member, newest first: their export's ``purchases``
    (``members.privacy``, through ``kopilka.wiring``)."""
    return pagination.all_pages(
        lambda c: list_purchases(session, member_id=member_id, cursor=c, limit=EXPORT_PAGE)
    )


# ---------------------------------------------------------------------------- for the challenges


def member_receipt_lines_between(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """The lines of the confirmed receipts with a member that occurred from ``start``
    (included) to ``end`` (excluded), ordered by receipt and line: the receipt's ``id``,
    ``member_id``, ``store``, ``channel``, ``occurred_at`` and ``total_due`` (money paid),
    and the line's ``line_no``, ``sku``, ``category``, ``quantity`` and ``line_paid`` (its
    money paid), labelled so. The console's simulation of a challenge replays them."""
    columns: list[Any] = [
        Purchase.id.label("id"),
        Purchase.member_id.label("member_id"),
        Purchase.store.label("store"),
        Purchase.channel.label("channel"),
        Purchase.occurred_at.label("occurred_at"),
        Purchase.total_due.label("total_due"),
        PurchaseLine.line_no.label("line_no"),
        PurchaseLine.sku.label("sku"),
        PurchaseLine.category.label("category"),
        PurchaseLine.quantity.label("quantity"),
        PurchaseLine.total_due.label("line_paid"),
    ]
    return (
        select(*columns)
        .join(PurchaseLine, PurchaseLine.purchase_id == Purchase.id)
        .where(
            Purchase.member_id.is_not(None),
            Purchase.status == "confirmed",
            Purchase.occurred_at >= start,
            Purchase.occurred_at < end,
        )
        .order_by(Purchase.id, PurchaseLine.line_no)
    )


def returned_lines_between(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """What the returns took back of the lines of the receipts that
    ``member_receipt_lines_between`` reads: ``purchase_id``, ``line_no``, ``quantity`` and
    ``refund`` (summed over the returns, whenever made), labelled so."""
    columns: list[Any] = [
        ReturnLine.purchase_id.label("purchase_id"),
        ReturnLine.line_no.label("line_no"),
        func.sum(ReturnLine.quantity, type_=Amount()).label("quantity"),
        func.sum(ReturnLine.refund, type_=Amount()).label("refund"),
    ]
    return (
        select(*columns)
        .join(Purchase, Purchase.id == ReturnLine.purchase_id)
        .where(
            Purchase.member_id.is_not(None),
            Purchase.status == "confirmed",
            Purchase.occurred_at >= start,
            Purchase.occurred_at < end,
        )
        .group_by(ReturnLine.purchase_id, ReturnLine.line_no)
    )


def members_buying_between(start: dt.datetime, end: dt.datetime) -> Select[Any]:
    """The members (``member_id``) with a confirmed receipt that occurred from ``start``
    (included) to ``end`` (excluded), each once."""
    return (
        select(Purchase.member_id.label("member_id"))
        .where(
            Purchase.member_id.is_not(None),
            Purchase.status == "confirmed",
            Purchase.occurred_at >= start,
            Purchase.occurred_at < end,
        )
        .distinct()
    )
