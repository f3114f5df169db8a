"""Ledger entries planned in memory and written as parts of one statement (PostgreSQL).

The hot path of a receipt reads the wallets (locked) and their open lots first, then
knows every posting it will make: the earn entry's new lot, the lots a redemption
consumes FIFO. ``plan_credit`` and ``plan_debit`` work those out without I/O, with the
same rules as ``service.credit`` and ``service.debit`` (which they share: ``fifo``,
``lot_times``), and ``add_to_batch`` writes all of a receipt's entries, lots, lot moves,
postings and wallet caches as parts of the receipt's one statement (``core.batch``).

What a plan does not handle is left to the service: a wallet in debt (an earning repays
the debt from the lots first), an entry whose key may exist already (the caller derives
the keys from a row it inserts in the same statement, so they are new).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, bindparam, case, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by

from kopilka.core.batch import Batch
from kopilka.core.db import UTCDateTime
from kopilka.core.errors import Problem, field_error
from kopilka.core.money import ZERO, fmt, from_units, to_units
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Lot


@dataclass(frozen=True)
class Wallet:
    """A member wallet as read under its row lock."""

    id: int
    member_id: uuid.UUID
    currency: str
    balance: Decimal
    debt: Decimal


@dataclass
class Plan:
    """One journal entry: its row, postings ``(account, amount, lot)`` (``lot`` None: no
    lot; ``NEW``: the lot the entry creates), the lot it creates and the lots it moves."""

    entry: dict[str, Any]
    postings: list[tuple[int, Decimal, int | None]] = field(default_factory=list)
    new_lot: tuple[int, Decimal, dt.datetime, dt.datetime | None] | None = None
    lot_moves: dict[int, Decimal] = field(default_factory=dict)
    wallet_moves: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)


NEW = -1  # in a posting: the lot its own entry creates


def fifo(amount: Decimal, remaining: Iterable[Decimal]) -> tuple[list[Decimal], Decimal]:
    """How much to take from each lot (in the order given: FIFO by expiry) to make up
    ``amount``, and what is left over when the lots do not cover it. Pure."""
    left = amount
    takes: list[Decimal] = []
    for r in remaining:
        take = min(left, r) if left > 0 else ZERO
        takes.append(take)
        left -= take
    return takes, left


def entry_row(
    wallet: Wallet,
    key: str,
    kind: str,
    amount: Decimal,
    *,
    actor: str,
    description: str,
    occurred_at: dt.datetime,
    purchase_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The row of an entry that moves ``amount`` in or out of ``wallet``."""
    return ledger.entry_row(
        key=key,
        kind=kind,
        currency=wallet.currency,
        amount=amount,
        member_id=wallet.member_id,
        actor=actor,
        description=description,
        occurred_at=occurred_at,
        purchase_id=purchase_id,
    )


def plan_credit(
    wallet: Wallet,
    counter: int,
    entry: dict[str, Any],
    *,
    available_at: dt.datetime,
    expires_at: dt.datetime | None,
    precision: int,
) -> Plan:
    """``entry`` (``entry_row``) into ``wallet`` as a new lot, from the system account
    ``counter``; 422 ``balance_limit_exceeded`` past what a wallet holds
    (``service.check_room``). Only for a wallet without debt (``service.credit`` repays a
    debt first)."""
    amount: Decimal = entry["amount"]
    if wallet.debt != 0:
        raise ValueError("a wallet in debt is credited by ledger.service.credit")
    if amount <= 0:
        raise ValueError("a credit moves more than zero")
    ledger.check_room(wallet.currency, precision, wallet.balance, amount)
    plan = Plan(entry)
    plan.new_lot = (wallet.id, amount, available_at, expires_at)
    plan.postings = [(wallet.id, amount, NEW), (counter, -amount, None)]
    plan.wallet_moves[wallet.id] = (amount, ZERO)
    return plan


def plan_debit(
    wallet: Wallet,
    lots: Sequence[tuple[int, Decimal]],
    counter: int,
    entry: dict[str, Any],
    *,
    precision: int,
) -> Plan:
    """``entry`` (``entry_row``) out of ``wallet``'s open ``lots`` (``(id, remaining)``,
    FIFO by expiry, as read under the wallet's lock) to ``counter``; 422
    ``insufficient_balance`` when they hold less. Only for a wallet without debt."""
    amount: Decimal = entry["amount"]
    if wallet.debt != 0:
        raise ValueError("a wallet in debt is debited by ledger.service.debit")
    have = sum((r for _, r in lots), ZERO)
    if amount > have:
        raise Problem(
            422,
            "insufficient_balance",
            f"{fmt(have, precision)} {wallet.currency} available, {fmt(amount, precision)} asked",
            errors=[field_error("amount", "more than the available balance", "insufficient")],
            extra={"available": fmt(have, precision)},
        )
    plan = Plan(entry)
    takes, _ = fifo(amount, (r for _, r in lots))
    for (lot_id, _), take in zip(lots, takes, strict=True):
        if take > 0:
            plan.postings.append((wallet.id, -take, lot_id))
            plan.lot_moves[lot_id] = -take
    plan.postings.append((counter, amount, None))
    plan.wallet_moves[wallet.id] = (-amount, ZERO)
    return plan


def open_lots_columns(account: Any, at: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Two scalar subqueries for a statement that reads a receipt's context: the ids and
    the remaining amounts (``Amount`` units) of ``account``'s open lots at ``at``, FIFO by
    expiry (never-expiring last), as arrays in the same order."""
    where = (
        Lot.account_id == account,
        Lot.remaining > 0,
        Lot.available_at <= at,
        or_(Lot.expires_at.is_(None), Lot.expires_at > at),
    )
    order = (
        case((Lot.expires_at.is_(None), 1), else_=0),
        Lot.expires_at,
        Lot.available_at,
        Lot.id,
    )
    ids = select(func.array_agg(aggregate_order_by(Lot.id, *order))).where(*where)
    rest = select(
        func.array_agg(aggregate_order_by(type_coerce(Lot.remaining, BigInteger), *order))
    ).where(*where)
    return ids.scalar_subquery(), rest.scalar_subquery()


def lots_of(ids: list[int] | None, remaining: list[int] | None) -> list[tuple[int, Decimal]]:
    """``open_lots_columns``' two arrays as ``(id, remaining)`` pairs."""
    return [(int(i), from_units(r)) for i, r in zip(ids or [], remaining or [], strict=True)]


_POSTINGS = """  INSERT INTO ledger_postings (entry_id, account_id, currency, amount, lot_id)
  SELECT x.entry_id, x.account_id, x.currency, x.amount, x.lot_id
  FROM {guard} CROSS JOIN unnest(CAST(:lp_entry AS uuid[]), CAST(:lp_account AS bigint[]),
                   CAST(:lp_currency AS text[]), CAST(:lp_amount AS bigint[]),
                   CAST(:lp_lot AS bigint[]), CAST(:lp_new AS boolean[]))
    AS x(entry_id, account_id, currency, amount, lot_id, new_lot)"""
# the postings that name the lot their own entry creates take its id from its RETURNING
_POSTINGS_WITH_NEW_LOTS = (
    _POSTINGS.replace("x.amount, x.lot_id", "x.amount, COALESCE(x.lot_id, nl.id)")
    + "\n  LEFT JOIN ledger_nl AS nl ON x.new_lot AND nl.entry_id = x.entry_id"
)


def add_to_batch(batch: Batch, plans: Sequence[Plan]) -> None:
    """Write ``plans`` as parts of ``batch`` (all reading its guard): the entries, the
    lots they create, the lots they move, their postings and the wallets' caches (summed
    per wallet: one statement updates a row once)."""
    if not plans:
        return
    for p in plans:
        total = sum((a for _, a, _ in p.postings), ZERO)
        if total != 0:  # pragma: no cover - a bug, never a user error
            raise AssertionError(f"entry {p.entry['key']} does not balance: {total}")
    e = [p.entry for p in plans]
    batch.add(
        "ledger_e",
        """  INSERT INTO ledger_entries (id, key, kind, currency, amount, member_id, purchase_id,
                              reverses_id, occurred_at, created_at, actor, description)
  SELECT x.* FROM {guard}, unnest(
    CAST(:le_id AS uuid[]), CAST(:le_key AS text[]), CAST(:le_kind AS text[]),
    CAST(:le_currency AS text[]), CAST(:le_amount AS bigint[]), CAST(:le_member AS uuid[]),
    CAST(:le_purchase AS uuid[]), CAST(:le_reverses AS uuid[]),
    CAST(:le_occurred AS timestamptz[]), CAST(:le_created AS timestamptz[]),
    CAST(:le_actor AS text[]), CAST(:le_description AS text[])) AS x""",
        {
            "le_id": [x["id"] for x in e],
            "le_key": [x["key"] for x in e],
            "le_kind": [x["kind"] for x in e],
            "le_currency": [x["currency"] for x in e],
            "le_amount": [to_units(x["amount"]) for x in e],
            "le_member": [x["member_id"] for x in e],
            "le_purchase": [x["purchase_id"] for x in e],
            "le_reverses": [x["reverses_id"] for x in e],
            "le_occurred": [x["occurred_at"] for x in e],
            "le_created": [x["created_at"] for x in e],
            "le_actor": [x["actor"] for x in e],
            "le_description": [x["description"] for x in e],
        },
    )
    made = [(p.entry["id"], p.new_lot) for p in plans if p.new_lot is not None]
    if made:
        batch.add(
            "ledger_nl",
            """  INSERT INTO ledger_lots (account_id, entry_id, amount, remaining, available_at,
                           expires_at)
  SELECT x.account_id, x.entry_id, x.amount, x.amount, x.available_at, x.expires_at
  FROM {guard}, unnest(CAST(:ln_account AS bigint[]), CAST(:ln_entry AS uuid[]),
                   CAST(:ln_amount AS bigint[]), CAST(:ln_available AS timestamptz[]),
                   CAST(:ln_expires AS timestamptz[]))
    AS x(account_id, entry_id, amount, available_at, expires_at)
  RETURNING id, entry_id""",
            {
                "ln_account": [lot[0] for _, lot in made],
                "ln_entry": [entry_id for entry_id, _ in made],
                "ln_amount": [to_units(lot[1]) for _, lot in made],
                "ln_available": [lot[2] for _, lot in made],
                "ln_expires": [lot[3] for _, lot in made],
            },
        )
    moves: dict[int, Decimal] = {}
    for p in plans:
        for lot_id, delta in p.lot_moves.items():
            moves[lot_id] = moves.get(lot_id, ZERO) + delta
    if moves:
        batch.add(
            "ledger_lm",
            """  UPDATE ledger_lots AS l SET remaining = l.remaining + d.delta
  FROM {guard}, unnest(CAST(:lm_id AS bigint[]), CAST(:lm_delta AS bigint[])) AS d(id, delta)
  WHERE l.id = d.id""",
            {"lm_id": list(moves), "lm_delta": [to_units(d) for d in moves.values()]},
        )
    rows = [(p.entry["id"], p.entry["currency"], *posting) for p in plans for posting in p.postings]
    batch.add(
        "ledger_p",
        _POSTINGS_WITH_NEW_LOTS if made else _POSTINGS,
        {
            "lp_entry": [r[0] for r in rows],
            "lp_account": [r[2] for r in rows],
            "lp_currency": [r[1] for r in rows],
            "lp_amount": [to_units(r[3]) for r in rows],
            "lp_lot": [None if r[4] in (None, NEW) else r[4] for r in rows],
            "lp_new": [r[4] == NEW for r in rows],
        },
    )
    wallets: dict[int, tuple[Decimal, Decimal]] = {}
    for p in plans:
        for acc, (bal, debt) in p.wallet_moves.items():
            b0, d0 = wallets.get(acc, (ZERO, ZERO))
            wallets[acc] = (b0 + bal, d0 + debt)
    batch.add(
        "ledger_w",
        """  UPDATE ledger_accounts AS a SET balance = a.balance + w.bal, debt = a.debt + w.debt
  FROM {guard}, unnest(CAST(:lw_id AS bigint[]), CAST(:lw_bal AS bigint[]),
                   CAST(:lw_debt AS bigint[])) AS w(id, bal, debt)
  WHERE a.id = w.id""",
        {
            "lw_id": list(wallets),
            "lw_bal": [to_units(b) for b, _ in wallets.values()],
            "lw_debt": [to_units(d) for _, d in wallets.values()],
        },
    )


def at_param(name: str) -> Any:
    """A bound moment for ``open_lots_columns``."""
    return bindparam(name, type_=UTCDateTime())
