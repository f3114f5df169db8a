"""The ledger's reads for other domains' statements (a receipt's context read).

A receipt reads, under its wallet locks and in one statement with everything else its
figures depend on, the redeemed wallet's open lots: ``open_lots_columns`` gives the
columns, ``lots_of`` turns them into ``planner.OpenLot``s. A tier's ``points`` metric
reads the points earned in a window (``points_earned``, ``points_taken_back``, and
``points_kept_of_one`` for a receipt's statement).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    String,
    any_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased

from kopilka.core.db import UTCDateTime, member_window
from kopilka.core.money import from_units
from kopilka.ledger.models import Account, Lot, Posting
from kopilka.ledger.models import Entry as Entry  # the type of what entry_with_key answers
from kopilka.ledger.planner import OpenLot


def open_lots_columns(account: Any, at: Any) -> list[ColumnElement[Any]]:
    """Scalar subqueries for a statement that reads a receipt's context: the ids, the
    remaining amounts (``Amount`` units), the availability and the expiry of
    ``account``'s open lots at ``at``, as arrays in the same order (``lots_of``)."""
    where = (
        Lot.account_id == account,
        Lot.remaining > 0,
        Lot.available_at <= at,
        or_(Lot.expires_at.is_(None), Lot.expires_at > at),
    )
    # in one order (any: ``planner.fifo_order`` decides the spending order)
    columns = (
        Lot.id,
        type_coerce(Lot.remaining, BigInteger),
        Lot.available_at,
        Lot.expires_at,
    )
    return [
        select(func.array_agg(aggregate_order_by(c, Lot.id))).where(*where).scalar_subquery()
        for c in columns
    ]


def lots_of(
    ids: list[int] | None,
    remaining: list[int] | None,
    available_at: list[dt.datetime] | None,
    expires_at: list[dt.datetime | None] | None,
) -> list[OpenLot]:
    """``open_lots_columns``' four arrays as lots."""
    return [
        OpenLot(int(i), from_units(r), a, e)
        for i, r, a, e in zip(
            ids or [], remaining or [], available_at or [], expires_at or [], strict=True
        )
    ]


def at_param(name: str) -> Any:
    """A bound moment for ``open_lots_columns``."""
    return bindparam(name, type_=UTCDateTime())


def wallets_locked(member_id: Any, *, arrays: bool) -> Select[Any]:
    """The member's wallets of the currencies bound as ``codes`` (``id``, ``currency``,
    ``balance``, ``debt``), locked ``FOR UPDATE`` in account order, as ``lock_wallets``
    takes them. ``arrays``: ``codes`` is bound as one array (PostgreSQL's raw cursor),
    otherwise as an expanding list."""
    codes = (
        Account.currency == any_(bindparam("codes", type_=ARRAY(String)))
        if arrays
        else Account.currency.in_(bindparam("codes", expanding=True))
    )
    columns: list[Any] = [Account.id, Account.currency, Account.balance, Account.debt]
    return (
        select(*columns)
        .where(Account.kind == "member", Account.member_id == member_id, codes)
        .order_by(Account.id)
        .with_for_update()
    )


def entry_with_key(session: Session, key: str) -> Entry | None:
    """The ledger entry written with ``key`` (an entry's key is unique), or None."""
    return session.execute(select(Entry).where(Entry.key == key)).scalar_one_or_none()


def _earned_in(
    ids: Sequence[uuid.UUID], currency: str | None, start: Any, end: Any
) -> tuple[Any, ...]:
    return (
        Entry.member_id.in_(ids),
        Entry.kind == "earn",
        Entry.currency == currency,
        Entry.occurred_at >= start,
        Entry.occurred_at <= end,
    )


def points_earned(
    ids: Sequence[uuid.UUID], currency: str | None, start: dt.datetime, end: dt.datetime
) -> Select[uuid.UUID | None, Decimal]:
    """``(member_id, amount)``: the points of ``currency`` each of these members earned
    (``earn`` entries) from ``start`` to ``end``, both included."""
    return (
        select(Entry.member_id, func.sum(Entry.amount))
        .where(*_earned_in(ids, currency, start, end))
        .group_by(Entry.member_id)
    )


def points_taken_back(
    ids: Sequence[uuid.UUID], currency: str | None, start: dt.datetime, end: dt.datetime
) -> Select[uuid.UUID | None, Decimal]:
    """``(member_id, amount)``: what returns and cancellations took back (the entries
    reversing them) of the points ``points_earned`` counts."""
    back = aliased(Entry)
    return (
        select(Entry.member_id, func.sum(back.amount))
        .join(back, back.reverses_id == Entry.id)
        .where(*_earned_in(ids, currency, start, end), back.member_id.in_(ids))
        .group_by(Entry.member_id)
    )


def points_kept_of_one(m: Any, start: Any, end: Any, currency: Any) -> Any:
    """For a receipt's statement: the points of ``currency`` the member ``m`` earned from
    ``start`` to ``end`` less what was taken back of them (``points_earned`` less
    ``points_taken_back`` of one member), in the units of ``Amount``, read through the
    ``(member_id, occurred_at)`` index (``core.db.member_window``)."""
    earn_filter = (
        *member_window(Entry.member_id, Entry.occurred_at, m, start, end),
        Entry.kind == "earn",
        Entry.currency == currency,
    )
    back = aliased(Entry)
    earned = select(func.coalesce(func.sum(Entry.amount), 0)).where(*earn_filter)
    taken = (
        select(func.coalesce(func.sum(back.amount), 0))
        .select_from(Entry)
        .join(back, back.reverses_id == Entry.id)
        .where(*earn_filter, back.member_id == m)
    )
    return earned.scalar_subquery() - taken.scalar_subquery()


# ---------------------------------------------------------------------------- for the reports


def member_entries(
    lo: uuid.UUID | None, hi: uuid.UUID | None, *, leaving_out: Collection[str]
) -> Select[Any]:
    """The entries with a member, of any kind but ``leaving_out``, with ids from ``lo``
    (included) to ``hi`` (not; either end open when None): their ``occurred_at``,
    ``currency``, ``kind``, ``amount``, ``member_net`` (what the entry's postings on
    member accounts add up to), ``purchase_id`` and ``member_id``, labelled so, for a
    caller to pick and add up (``with_only_columns`` over its ``selected_columns``). The
    amounts are raw integer units of 1/10 000 (``Amount`` would turn them into Decimal)."""
    member_net = (
        select(func.coalesce(func.sum(type_coerce(Posting.amount, BigInteger)), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id == Entry.id, Account.kind == "member")
        .scalar_subquery()
    )
    columns: list[Any] = [
        Entry.occurred_at.label("occurred_at"),
        Entry.currency.label("currency"),
        Entry.kind.label("kind"),
        type_coerce(Entry.amount, BigInteger).label("amount"),
        member_net.label("member_net"),
        Entry.purchase_id.label("purchase_id"),
        Entry.member_id.label("member_id"),
    ]
    q = select(*columns).where(Entry.member_id.is_not(None), Entry.kind.not_in(leaving_out))
    if lo is not None:
        q = q.where(Entry.id >= lo)
    if hi is not None:
        q = q.where(Entry.id < hi)
    return q


def member_balances() -> Select[str, Decimal]:
    """``(currency, balance)``: the cached balances of all member wallets, summed per
    currency (lapsed lots not yet written off included: ``lapsed_lots``)."""
    return (
        select(Account.currency.label("currency"), func.sum(Account.balance).label("balance"))
        .where(Account.kind == "member")
        .group_by(Account.currency)
    )


def lapsed_lots(at: dt.datetime) -> Select[str, Decimal]:
    """``(currency, remaining)``: per currency, what remains of member wallets' lots that
    have expired by ``at`` but whose expiry entry the job has not written yet."""
    # The lapsed lots come from the partial index of open lots (ix_ledger_lots_lapsing);
    # their wallets are looked up one by one (a join would read every wallet, and the
    # lapsed lots are a handful: the expiry job writes them off).
    wallet_currency = (
        select(Account.currency)
        .where(Account.id == Lot.account_id, Account.kind == "member")
        .scalar_subquery()
    )
    lots = (
        select(wallet_currency.label("currency"), Lot.remaining.label("remaining"))
        .where(Lot.expires_at <= at, Lot.remaining > 0)
        .subquery()
    )
    return (
        select(lots.c.currency, func.sum(lots.c.remaining).label("remaining"))
        .where(lots.c.currency.is_not(None))
        .group_by(lots.c.currency)
    )
