"""What a ledger movement writes, decided without I/O: the ledger's rules, once.

A caller reads what a movement depends on (the wallet under its row lock, its open lots,
what an earlier entry posted) and hands it to a planner here, which answers with the rows
to write: the entry, its postings, the lots it makes, what it adds to lots' ``remaining``
and to wallets' ``balance`` and ``debt``. Writing them is the caller's business (one
statement on PostgreSQL, one per part on SQLite), so every path that moves points (the
ledger's own operations, a receipt's confirmation) spends lots by the same rule:

* **oldest expiry first**: open lots are spent by expiry (never-expiring last), then by
  when they became available, then by age (``fifo_order``);
* **a debt is repaid first**: a wallet in debt (a reversed credit already spent) repays it
  from its open lots before anything else is taken, and an earning repays it at once;
* **insufficient exactly when available < asked** (``insufficient``), where available is
  the open lots less the debt;
* **a wallet holds less than ``MAX_AMOUNT``** (``check_room``).

Lots a plan makes have no id until written: postings name them by ``new_ref(i)``, a
negative number (the ``i``-th of ``EntryPlan.new_lots``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from kopilka.core.errors import Problem, field_error
from kopilka.core.money import MAX_AMOUNT, ZERO, fmt, quantum

# ---------------------------------------------------------------------------- what is read


@dataclass(frozen=True)
class Wallet:
    """A member wallet as read under its row lock."""

    id: int
    member_id: uuid.UUID
    currency: str
    balance: Decimal
    debt: Decimal


@dataclass(frozen=True)
class OpenLot:
    """A lot as read: what is left of it and when it is spendable."""

    id: int
    remaining: Decimal
    available_at: dt.datetime
    expires_at: dt.datetime | None

    def open_at(self, at: dt.datetime) -> bool:
        """Spendable at ``at``: something left, available, not expired."""
        return (
            self.remaining > 0
            and self.available_at <= at
            and (self.expires_at is None or self.expires_at > at)
        )


# ---------------------------------------------------------------------------- what to write


def new_ref(index: int) -> int:
    """How a posting names the ``index``-th lot its own entry makes (ids are positive)."""
    return -1 - index


@dataclass
class NewLot:
    """A lot the entry makes: born with ``amount``, ``remaining`` after the entry."""

    account: int
    amount: Decimal
    remaining: Decimal
    available_at: dt.datetime
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class Posting:
    """One leg of an entry; ``lot``: an existing lot's id, a ``new_ref``, or None (a
    member wallet's posting without a lot moves its debt)."""

    account: int
    amount: Decimal
    lot: int | None = None


@dataclass
class EntryPlan:
    """One journal entry and everything it changes."""

    entry: dict[str, Any]
    postings: list[Posting] = field(default_factory=list)
    new_lots: list[NewLot] = field(default_factory=list)
    lot_moves: dict[int, Decimal] = field(default_factory=dict)  # existing lot -> delta
    wallet_moves: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def check(self) -> None:
        """Postings sum to zero (a bug otherwise, never a user error)."""
        total = sum((p.amount for p in self.postings), ZERO)
        if total != 0:
            raise AssertionError(f"entry {self.entry['key']} does not balance: {total}")


# ---------------------------------------------------------------------------- the rules


def fifo_order(lots: Iterable[OpenLot]) -> list[OpenLot]:
    """Lots in the order they are spent: the earliest expiry first (never-expiring last),
    then the earliest available, then the oldest (lower id; a lot being made is newest)."""

    def key(lot: OpenLot) -> tuple[bool, dt.datetime, dt.datetime, bool, int]:
        expiry = lot.expires_at or dt.datetime.max.replace(tzinfo=dt.UTC)
        made_here = lot.id < 0
        return (lot.expires_at is None, expiry, lot.available_at, made_here, abs(lot.id))

    return sorted(lots, key=key)


def spend(amount: Decimal, lots: Iterable[OpenLot]) -> tuple[list[tuple[int, Decimal]], Decimal]:
    """What to take from which lot (``fifo_order``, open or not as given) to make up
    ``amount``: ``(lot id, take > 0)`` in spending order, and what the lots do not cover."""
    left = amount
    takes: list[tuple[int, Decimal]] = []
    for lot in fifo_order(lots):
        if left <= 0:
            break
        take = min(left, lot.remaining)
        if take > 0:
            takes.append((lot.id, take))
            left -= take
    return takes, left


def available(wallet: Wallet, lots: Iterable[OpenLot], at: dt.datetime) -> Decimal:
    """What the member can spend at ``at``: open lots less the debt, never below zero."""
    have = sum((lot.remaining for lot in lots if lot.open_at(at)), ZERO)
    return max(have - wallet.debt, ZERO)


def insufficient(
    have: Decimal, asked: Decimal, *, currency: str, precision: int, field_name: str = "amount"
) -> Problem | None:
    """422 ``insufficient_balance`` exactly when ``have`` (what is available) is less
    than ``asked``; None when it covers it. The caller raises it, or reports it as a
    warning (a receipt's calculation)."""
    if asked <= have:
        return None
    shown = fmt(max(have, ZERO), precision)
    return Problem(
        422,
        "insufficient_balance",
        f"{shown} {currency} available, {fmt(asked, precision)} asked",
        errors=[field_error(field_name, "more than the available balance", "insufficient")],
        extra={"available": shown},
    )


def check_room(
    currency: str, precision: int, balance: Decimal, amount: Decimal, field_name: str = "amount"
) -> None:
    """A wallet's balance stays below ``MAX_AMOUNT``, as any single amount does: far above
    any real balance, and ninety times inside what its BIGINT column holds, so a credit
    can never overflow the cache (PostgreSQL: a 500; SQLite: a silent float). 422
    ``balance_limit_exceeded`` with the ``room`` left otherwise."""
    if balance + amount < MAX_AMOUNT:
        return
    room = max(MAX_AMOUNT - balance - quantum(precision), ZERO)
    raise Problem(
        422,
        "balance_limit_exceeded",
        f"the {currency} balance would reach {fmt(MAX_AMOUNT, 0)}, more than a wallet holds",
        errors=[field_error(field_name, "more than the wallet can hold", "range")],
        extra={"room": fmt(room, precision)},
    )


# ---------------------------------------------------------------------------- planners


class _Draft:
    """An entry being planned: postings, and the lots' and wallets' state after each one
    (a later step of the same entry sees what an earlier one took)."""

    def __init__(self, entry: dict[str, Any], wallets: Iterable[Wallet]) -> None:
        self.plan = EntryPlan(entry)
        self.debt = {w.id: w.debt for w in wallets}
        self.lots: dict[int, OpenLot] = {}
        self.owner: dict[int, int] = {}  # lot -> wallet

    def know(self, wallet: Wallet, lots: Iterable[OpenLot]) -> None:
        """Lots read of ``wallet``, as they are before this entry."""
        for lot in lots:
            self.lots.setdefault(lot.id, lot)
            self.owner[lot.id] = wallet.id

    def open_lots(self, wallet: Wallet, at: dt.datetime) -> list[OpenLot]:
        return [
            lot for i, lot in self.lots.items() if self.owner[i] == wallet.id and lot.open_at(at)
        ]

    def new_lot(
        self,
        wallet: Wallet,
        amount: Decimal,
        available_at: dt.datetime,
        expires_at: dt.datetime | None,
    ) -> int:
        ref = new_ref(len(self.plan.new_lots))
        self.plan.new_lots.append(NewLot(wallet.id, amount, ZERO, available_at, expires_at))
        self.know(wallet, [OpenLot(ref, ZERO, available_at, expires_at)])
        self.post(wallet.id, amount, ref)  # the lot is born with its amount
        return ref

    def post(self, account: int, amount: Decimal, lot: int | None = None) -> None:
        if amount == 0:
            return
        self.plan.postings.append(Posting(account, amount, lot))
        if account in self.debt:  # a member wallet (system accounts keep no caches)
            bal, debt = self.plan.wallet_moves.get(account, (ZERO, ZERO))
            debt_delta = -amount if lot is None else ZERO
            self.plan.wallet_moves[account] = (bal + amount, debt + debt_delta)
            self.debt[account] += debt_delta
        if lot is None:
            return
        known = self.lots[lot]
        self.lots[lot] = replace(known, remaining=known.remaining + amount)
        if lot < 0:
            self.plan.new_lots[-1 - lot].remaining += amount
        else:
            self.plan.lot_moves[lot] = self.plan.lot_moves.get(lot, ZERO) + amount

    def consume(
        self, wallet: Wallet, amount: Decimal, at: dt.datetime, first: int | None = None
    ) -> Decimal:
        """Take up to ``amount`` from the wallet's open lots (``first``, then FIFO);
        what is left."""
        left = amount
        if first is not None:
            take = min(left, self.lots[first].remaining)
            if take > 0:
                self.post(wallet.id, -take, first)
                left -= take
        rest = [lot for lot in self.open_lots(wallet, at) if lot.id != first]
        takes, left = spend(left, rest)
        for lot_id, take in takes:
            self.post(wallet.id, -take, lot_id)
        return left

    def settle_debt(self, wallet: Wallet, at: dt.datetime) -> None:
        """Repay what the member owes from open lots (earnings repay debts)."""
        owed = self.debt[wallet.id]
        if owed <= 0:
            return
        repaid = owed - self.consume(wallet, owed, at)
        if repaid > 0:
            self.post(wallet.id, repaid)  # a posting without a lot: the debt shrinks

    def done(self) -> EntryPlan:
        self.plan.check()
        return self.plan


def plan_credit(
    wallet: Wallet,
    counter: int,
    entry: dict[str, Any],
    *,
    available_at: dt.datetime,
    expires_at: dt.datetime | None,
    precision: int,
    lots: Sequence[OpenLot] = (),
    at: dt.datetime | None = None,
) -> EntryPlan:
    """``entry`` into ``wallet`` as a new lot, from the system account ``counter``; 422
    ``balance_limit_exceeded`` past what a wallet holds. A wallet in debt repays it at
    ``at`` from its open ``lots`` and the new lot (then both must be given)."""
    amount: Decimal = entry["amount"]
    if amount <= 0:
        raise ValueError("a credit moves more than zero")
    check_room(wallet.currency, precision, wallet.balance, amount)
    draft = _Draft(entry, [wallet])
    draft.know(wallet, lots)
    draft.new_lot(wallet, amount, available_at, expires_at)
    draft.post(counter, -amount)
    if wallet.debt > 0:
        if at is None:
            raise ValueError("a wallet in debt is credited with its open lots and a moment")
        draft.settle_debt(wallet, at)
    return draft.done()


def plan_debit(
    wallet: Wallet,
    lots: Sequence[OpenLot],
    counter: int,
    entry: dict[str, Any],
    *,
    precision: int,
    at: dt.datetime,
    allow_debt: bool = False,
    field_name: str = "amount",
) -> EntryPlan:
    """``entry`` out of ``wallet``'s open ``lots`` at ``at`` (a debt repaid first, then
    oldest expiry first) to ``counter``; 422 ``insufficient_balance`` when they hold
    less, unless ``allow_debt`` (what they lack becomes a debt)."""
    amount: Decimal = entry["amount"]
    if amount <= 0:
        raise ValueError("a debit moves more than zero")
    have = sum((lot.remaining for lot in lots if lot.open_at(at)), ZERO) - wallet.debt
    problem = insufficient(
        have, amount, currency=wallet.currency, precision=precision, field_name=field_name
    )
    if problem is not None and not allow_debt:
        raise problem
    draft = _Draft(entry, [wallet])
    draft.know(wallet, lots)
    draft.settle_debt(wallet, at)
    left = draft.consume(wallet, amount, at)
    if left > 0:
        draft.post(wallet.id, -left)  # only with allow_debt: the member owes this
    draft.post(counter, amount)
    return draft.done()


def plan_reverse_credit(
    wallet: Wallet,
    counter: int,
    entry: dict[str, Any],
    *,
    made: OpenLot | None,
    lots: Sequence[OpenLot],
    at: dt.datetime,
) -> EntryPlan:
    """Undo ``entry["amount"]`` of a credit: from the lot it ``made`` first (pending or
    not), then the wallet's open ``lots``, oldest expiry first; what the member has spent
    already becomes a debt."""
    amount: Decimal = entry["amount"]
    draft = _Draft(entry, [wallet])
    first = made.id if made is not None and made.remaining > 0 else None
    draft.know(wallet, [made] if made is not None else [])
    draft.know(wallet, lots)
    left = draft.consume(wallet, amount, at, first=first)
    if left > 0:
        draft.post(wallet.id, -left)  # already spent: a debt
    draft.post(counter, amount)
    return draft.done()


def plan_reverse_debit(
    wallet: Wallet,
    counter: int,
    entry: dict[str, Any],
    *,
    drawn: Sequence[tuple[OpenLot | None, Decimal]],
    done: Mapping[int | None, Decimal],
    lots: Sequence[OpenLot],
    at: dt.datetime,
) -> EntryPlan:
    """Undo ``entry["amount"]`` of a debit: give back what it drew (``drawn``: its member
    postings in order, each with its lot as it is now, None for a debt), the last drawn
    first, less what earlier reversals gave back (``done``, per lot id); then a debt is
    repaid from the wallet's open ``lots`` (with those given back)."""
    amount: Decimal = entry["amount"]
    draft = _Draft(entry, [wallet])
    draft.know(wallet, lots)
    draft.know(wallet, (lot for lot, _ in drawn if lot is not None))
    given = dict(done)
    left = amount
    for lot, posted in reversed(drawn):
        if left == 0:
            break
        if posted >= 0:
            continue
        key = lot.id if lot is not None else None
        give = min(left, -posted - given.get(key, ZERO))
        if give <= 0:
            continue
        given[key] = given.get(key, ZERO) + give
        draft.post(wallet.id, give, key)
        left -= give
    draft.post(counter, -amount)
    draft.settle_debt(wallet, at)
    return draft.done()


def plan_transfer(
    source: Wallet,
    target: Wallet,
    entry: dict[str, Any],
    *,
    source_lots: Sequence[OpenLot],
    target_lots: Sequence[OpenLot],
    precision: int,
    at: dt.datetime,
) -> EntryPlan:
    """Move ``entry["amount"]`` from ``source`` to ``target`` at ``at``: the source's
    debt repaid first, then its lots spent oldest expiry first, each into a new lot of
    the target with the same expiry (a gift cannot extend a lifetime); the target's debt
    repaid from its lots. 422 ``insufficient_balance`` or ``balance_limit_exceeded``."""
    amount: Decimal = entry["amount"]
    have = sum((lot.remaining for lot in source_lots if lot.open_at(at)), ZERO) - source.debt
    problem = insufficient(have, amount, currency=source.currency, precision=precision)
    if problem is not None:
        raise problem
    check_room(target.currency, precision, target.balance, amount)
    draft = _Draft(entry, [source, target])
    draft.know(source, source_lots)
    draft.settle_debt(source, at)
    takes, left = spend(amount, draft.open_lots(source, at))
    assert left == 0
    for lot_id, take in takes:
        draft.post(source.id, -take, lot_id)
        draft.new_lot(target, take, at, draft.lots[lot_id].expires_at)
    draft.know(target, target_lots)
    draft.settle_debt(target, at)
    return draft.done()


def after(wallet: Wallet, lots: Sequence[OpenLot], plan: EntryPlan) -> tuple[Wallet, list[OpenLot]]:
    """``wallet`` and its ``lots`` as ``plan`` leaves them, for the next entry of the same
    statement on the same wallet (a receipt's earning after its redemption). The lots
    ``plan`` makes are left out: no later entry of a receipt spends them."""
    bal, debt = plan.wallet_moves.get(wallet.id, (ZERO, ZERO))
    moved = [replace(x, remaining=x.remaining + plan.lot_moves.get(x.id, ZERO)) for x in lots]
    return replace(wallet, balance=wallet.balance + bal, debt=wallet.debt + debt), moved


def plan_expire(wallet: Wallet, lot: OpenLot, breakage: int, entry: dict[str, Any]) -> EntryPlan:
    """What is left of an expired ``lot`` to the ``breakage`` account."""
    draft = _Draft(entry, [wallet])
    draft.know(wallet, [lot])
    draft.post(wallet.id, -lot.remaining, lot.id)
    draft.post(breakage, lot.remaining)
    return draft.done()


def plan_move(source: int, target: int, entry: dict[str, Any]) -> EntryPlan:
    """``entry["amount"]`` between two system accounts."""
    draft = _Draft(entry, [])
    draft.post(source, -entry["amount"])
    draft.post(target, entry["amount"])
    return draft.done()
