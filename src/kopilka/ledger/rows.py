"""Planned ledger entries (``ledger.planner.EntryPlan``) as parts of a ``core.plan.Plan``.

The entries, the lots they make (their ids made by the statement, so that the postings
can name them), what they add to lots' ``remaining``, their postings, and what they add
to the wallets' ``balance`` and ``debt`` (summed per wallet by ``Plan.add_to``). Pure:
``core.write`` writes the plan on either database.
"""

from __future__ import annotations

from collections.abc import Sequence

from kopilka.core.plan import Plan, Ref
from kopilka.ledger.models import Account, Entry, Lot, Posting
from kopilka.ledger.planner import EntryPlan

_ENTRIES = Entry.__table__
_LOTS = Lot.__table__
_POSTINGS = Posting.__table__
_ACCOUNTS = Account.__table__


def add_entries(plan: Plan, entries: Sequence[EntryPlan]) -> None:
    """Add the rows of ``entries`` to ``plan``, in the order they are written."""
    if not entries:
        return
    for e in entries:
        e.check()
    plan.insert(_ENTRIES, [dict(e.entry) for e in entries])  # type: ignore[arg-type]
    made: dict[tuple[int, int], Ref] = {}  # (entry, its new lot) -> the lot's id
    lots = []
    for n, e in enumerate(entries):
        for i, lot in enumerate(e.new_lots):
            ref = made[(n, i)] = plan.new_id(_LOTS)  # type: ignore[arg-type]
            lots.append(
                {
                    "id": ref,
                    "account_id": lot.account,
                    "entry_id": e.entry["id"],
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "available_at": lot.available_at,
                    "expires_at": lot.expires_at,
                }
            )
    plan.insert(_LOTS, lots)  # type: ignore[arg-type]
    for e in entries:
        if e.lot_moves:
            plan.add_to(
                _LOTS,  # type: ignore[arg-type]
                "id",
                ("remaining",),
                {lot_id: [delta] for lot_id, delta in e.lot_moves.items()},
            )
    plan.insert(
        _POSTINGS,  # type: ignore[arg-type]
        [
            {
                "entry_id": e.entry["id"],
                "account_id": p.account,
                "currency": e.entry["currency"],
                "amount": p.amount,
                "lot_id": made[(n, -1 - p.lot)] if p.lot is not None and p.lot < 0 else p.lot,
            }
            for n, e in enumerate(entries)
            for p in e.postings
        ],
    )
    for e in entries:
        if e.wallet_moves:
            plan.add_to(
                _ACCOUNTS,  # type: ignore[arg-type]
                "id",
                ("balance", "debt"),
                {acc: [bal, debt] for acc, (bal, debt) in e.wallet_moves.items()},
            )
