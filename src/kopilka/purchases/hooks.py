"""The seam of a receipt: what a new capability (a referral reward, challenge progress, a
partner posting) adds to a confirmation, in one place, on either database.

A capability registers a ``ReceiptHook`` (from the ``wiring`` of its package). The hook
says what it needs to read (``columns``: labelled scalar subqueries, bound by
``:member_id``) and plans its rows from what was read (``settled``: a receipt whose value
moved, confirmed or a hold committed; ``reversed``: a cancel or a return) as parts of a
``core.plan.Plan``. The confirmation reads the hooks' columns with its own context (on
PostgreSQL in the same statement as the figures' reads) and writes their parts with its
own (in the receipt's one statement); a conditional part that does not take
(``UpdateIfUnchanged``) is the receipt's one retry. ``settled`` may also answer events
``(type, data, member_id)``: they go to the outbox in that same statement, after the
receipt's own (challenge progress: no statement of its own per receipt).

Most receipts ask nothing more of a hook than those rows. For the rare one that needs a
domain's own operations — another member's wallet locked and credited through the
ledger's service, a coupon issued (a referral qualified by the friend's first purchase) —
a hook has ``after_settled`` and ``after_reversed``: called once the receipt's rows are
written, in the same transaction, still under the member's lock, with what ``columns``
read, so that a hook with nothing to do (the read says so) costs nothing more. A hook
reads and writes nothing else, and never commits.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from kopilka.core.plan import Plan
from kopilka.core.write import write


@dataclass(frozen=True)
class SettledLine:
    """A line of a settled receipt, as its figures recorded it."""

    line_no: int
    sku: str
    category: str | None
    quantity: Decimal
    amount: Decimal  # before discounts
    total_due: Decimal  # the money paid on it: after discounts and points redeemed


@dataclass(frozen=True)
class Settled:
    """A receipt whose value moved: confirmed, or a hold committed."""

    purchase_id: uuid.UUID
    member_id: uuid.UUID | None
    store: str
    occurred_at: dt.datetime
    total_due: Decimal
    earned: Mapping[str, Decimal]  # per currency
    channel: str = "pos"
    # the keyed digest of the till's ``payment.card_fingerprint``, when it sent one
    payment_fingerprint: str | None = None
    lines: tuple[SettledLine, ...] = ()


@dataclass(frozen=True)
class ReversedLine:
    line_no: int
    quantity: Decimal
    refund: Decimal


@dataclass(frozen=True)
class Reversed:
    """A cancel or a return of (part of) a settled receipt; ``key`` is the reversal's own
    (unique, so a hook's rows can carry it for idempotency)."""

    purchase_id: uuid.UUID
    member_id: uuid.UUID | None
    kind: str  # "cancel" or "return"
    key: str
    refund: Decimal
    # what this reversal takes back: each line's quantity and refund, the points revoked
    lines: tuple[ReversedLine, ...] = ()
    revoked: Mapping[str, Decimal] = field(default_factory=dict)


# An event a hook adds to a settled receipt's: ``(type, data, member_id)``.
Event = tuple[str, dict[str, Any], uuid.UUID | None]


class ReceiptHook(Protocol):
    name: str

    def columns(self) -> Sequence[ColumnElement[Any]]:
        """Labelled scalar subqueries of what the hook reads (``bindparam("member_id")``
        names the receipt's member); labels start with the hook's name."""
        ...

    def settled(
        self, receipt: Settled, read: Mapping[str, Any], plan: Plan
    ) -> Sequence[Event] | None:
        """Add the rows a settled receipt makes to ``plan``; the events to write with them,
        if any."""
        ...

    def reversed(self, receipt: Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        """Add the rows a cancel or a return makes to ``plan``."""
        ...

    def after_settled(self, session: Session, receipt: Settled, read: Mapping[str, Any]) -> None:
        """What a settled receipt does beyond rows, once they are written (usually
        nothing: return at once when ``read`` says so)."""
        ...

    def after_reversed(self, session: Session, receipt: Reversed, read: Mapping[str, Any]) -> None:
        """What a cancel or a return does beyond rows, once they are written."""
        ...


_lock = threading.Lock()
_hooks: dict[str, ReceiptHook] = {}
# The hooks in name order, made again on each change: every receipt reads it (three times),
# registering happens at start-up.
_ordered: tuple[ReceiptHook, ...] = ()


def _reorder() -> None:
    global _ordered
    _ordered = tuple(_hooks[n] for n in sorted(_hooks))


def register(hook: ReceiptHook) -> None:
    """Add (or replace, by name) a hook."""
    with _lock:
        _hooks[hook.name] = hook
        _reorder()


def unregister(name: str) -> None:
    with _lock:
        _hooks.pop(name, None)
        _reorder()


def registered() -> tuple[ReceiptHook, ...]:
    """The hooks, in name order (a tuple made when they change: reading it takes no lock)."""
    return _ordered


def columns() -> list[ColumnElement[Any]]:
    """Every registered hook's reads, for a receipt's context statement."""
    return [c for h in registered() for c in h.columns()]


def on_settled(receipt: Settled, read: Mapping[str, Any], plan: Plan) -> list[Event]:
    """Every hook's rows of a settled receipt into ``plan``; the events they answer."""
    events: list[Event] = []
    for h in registered():
        more = h.settled(receipt, read, plan)
        if more:
            events.extend(more)
    return events


def on_reversed(receipt: Reversed, read: Mapping[str, Any], plan: Plan) -> None:
    for h in registered():
        h.reversed(receipt, read, plan)


def after_settled(session: Session, receipt: Settled, read: Mapping[str, Any]) -> None:
    for h in registered():
        h.after_settled(session, receipt, read)


def read(session: Session, member_id: uuid.UUID | None) -> Mapping[str, Any]:
    """What the registered hooks read of ``member_id`` (the columns of ``columns``)."""
    cols = columns()
    if not cols:
        return {}
    return dict(session.execute(select(*cols), {"member_id": member_id}).one()._mapping)


def reverse(session: Session, receipt: Reversed) -> None:
    """The hooks of a cancel or a return: read, plan, write."""
    if not _hooks:
        return
    plan = Plan()
    seen = read(session, receipt.member_id)
    on_reversed(receipt, seen, plan)
    write(session, plan)
    for h in registered():
        h.after_reversed(session, receipt, seen)
