"""Planned ledger entries written as parts of one statement (PostgreSQL).

The hot path of a receipt reads the wallets (locked) and their open lots first, then
plans every entry it makes with ``ledger.planner`` (the rules ``service.credit`` and
``service.debit`` plan with too); ``add_to_batch`` writes all of a receipt's entries,
lots, lot moves, postings and wallet caches as parts of the receipt's one statement
(``core.batch``). The caller derives the entries' keys from a row it inserts in the same
statement, so they are new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, bindparam, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by

from kopilka.core.batch import Batch
from kopilka.core.db import UTCDateTime
from kopilka.core.money import ZERO, from_units, to_units
from kopilka.ledger.models import Lot
from kopilka.ledger.planner import EntryPlan, OpenLot


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


def add_to_batch(batch: Batch, plans: Sequence[EntryPlan]) -> None:
    """Write ``plans`` as parts of ``batch`` (all reading its guard): the entries, the
    lots they create (at most one each), the lots they move, their postings and the
    wallets' caches (summed per wallet: one statement updates a row once)."""
    if not plans:
        return
    for p in plans:
        p.check()
        if len(p.new_lots) > 1:  # pragma: no cover - the caller's choice
            raise ValueError("an entry of a batch makes at most one lot")
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
    made = [(p.entry["id"], lot) for p in plans for lot in p.new_lots]
    if made:
        batch.add(
            "ledger_nl",
            """  INSERT INTO ledger_lots (account_id, entry_id, amount, remaining, available_at,
                           expires_at)
  SELECT x.account_id, x.entry_id, x.amount, x.remaining, x.available_at, x.expires_at
  FROM {guard}, unnest(CAST(:ln_account AS bigint[]), CAST(:ln_entry AS uuid[]),
                   CAST(:ln_amount AS bigint[]), CAST(:ln_remaining AS bigint[]),
                   CAST(:ln_available AS timestamptz[]), CAST(:ln_expires AS timestamptz[]))
    AS x(account_id, entry_id, amount, remaining, available_at, expires_at)
  RETURNING id, entry_id""",
            {
                "ln_account": [lot.account for _, lot in made],
                "ln_entry": [entry_id for entry_id, _ in made],
                "ln_amount": [to_units(lot.amount) for _, lot in made],
                "ln_remaining": [to_units(lot.remaining) for _, lot in made],
                "ln_available": [lot.available_at for _, lot in made],
                "ln_expires": [lot.expires_at for _, lot in made],
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
    rows = [(p.entry["id"], p.entry["currency"], x) for p in plans for x in p.postings]
    batch.add(
        "ledger_p",
        _POSTINGS_WITH_NEW_LOTS if made else _POSTINGS,
        {
            "lp_entry": [entry_id for entry_id, _, _ in rows],
            "lp_account": [x.account for _, _, x in rows],
            "lp_currency": [currency for _, currency, _ in rows],
            "lp_amount": [to_units(x.amount) for _, _, x in rows],
            "lp_lot": [x.lot if x.lot is not None and x.lot > 0 else None for _, _, x in rows],
            "lp_new": [x.lot is not None and x.lot < 0 for _, _, x in rows],
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
