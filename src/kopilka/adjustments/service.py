"""Manual corrections of a member's balance, and the second person some of them need.

An adjustment is a signed amount with a reason. ``request`` decides what happens to it:
up to its currency's ceiling (``currencies[].adjust_approval_above`` in the programme) it
is posted at once (``post``); above it, it is recorded as *pending approval* and nothing
moves in the ledger until someone else ``approve``s it (then it is posted, once) or anyone
``reject``s it. Whatever the ceiling, no adjustment is ever ``MAX_AMOUNT`` or more, and no
wallet is taken to that (``ledger.planner.check_room``).

Exactly once: the posting's ledger key is the request's key (unique in both tables), and
an approval locks the request's row first, so two approvers clicking at once take turns:
the second finds it approved and posts nothing. Nothing here commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.adjustments.models import APPROVED, PENDING, REJECTED, Adjustment
from kopilka.audit.service import record
from kopilka.core import pagination
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import MAX_AMOUNT, fmt
from kopilka.events.service import emit
from kopilka.ledger import service as ledger
from kopilka.ledger.queries import Entry
from kopilka.members import service as members
from kopilka.program.queries import precision_of, with_precision
from kopilka.program.service import current_program
from kopilka.spec.program import CurrencySpec

MIN_REASON = 3


@dataclass(frozen=True)
class Requested:
    """What became of a request: an ``entry`` posted at once, or an ``adjustment``
    waiting for approval (or found again: a request sent twice)."""

    currency: CurrencySpec
    entry: Entry | None = None
    adjustment: Adjustment | None = None


def check(
    session: Session, *, member_id: uuid.UUID, currency: str, amount: Decimal, reason: str
) -> tuple[CurrencySpec, str]:
    """What every adjustment must be, asked for or approved: of a known member (404), in
    an active currency, not zero, within the currency's precision and below the ledger's
    ``MAX_AMOUNT``, with a reason of 3 characters at least. Returns the currency and the
    reason stripped."""
    members.get_member(session, member_id)
    cur = ledger.currency_row(session, currency)
    if not amount.is_finite():  # the console reads its form's text itself
        raise validation_problem([field_error("amount", "a number", "decimal")])
    if amount == 0:
        raise validation_problem([field_error("amount", "must not be zero", "range")])
    if abs(amount) >= MAX_AMOUNT:
        digits = MAX_AMOUNT.adjusted()
        raise validation_problem(
            [field_error("amount", f"at most {digits} digits before the point", "range")]
        )
    ledger.check_amount(cur, amount)
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise validation_problem([field_error("reason", "say why (3 characters at least)")])
    return cur, reason


def request(
    session: Session,
    *,
    member_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    reason: str,
    actor: str,
    key: str,
) -> Requested:
    """An adjustment asked for by ``actor``: posted at once up to the currency's ceiling,
    recorded as pending approval above it (audited ``ledger.adjust_request``). ``key``
    makes it idempotent: the same request again answers what the first one made."""
    cur, reason = check(
        session, member_id=member_id, currency=currency, amount=amount, reason=reason
    )
    if not cur.needs_approval(amount):
        entry, _ = post(
            session,
            member_id=member_id,
            currency=cur.code,
            amount=amount,
            reason=reason,
            actor=actor,
            key=key,
        )
        return Requested(cur, entry=entry)
    # two copies of one request (a double click) insert one row: the second waits for
    # the first's commit on PostgreSQL (SQLite runs them one after the other) and finds it
    made = session.execute(
        _insert(session)(Adjustment)
        .values(
            id=uuid7(),
            key=key,
            member_id=member_id,
            currency=cur.code,
            amount=amount,
            reason=reason,
            status=PENDING,
            requested_by=actor,
            requested_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Adjustment.id)
    ).scalar()
    adj = session.execute(
        select(Adjustment).where(Adjustment.key == key).execution_options(populate_existing=True)
    ).scalar_one()
    if (adj.member_id, adj.currency, adj.amount) != (member_id, cur.code, amount):
        raise Problem(
            422, "idempotency_key_reused", f"key {key!r} was used for a different adjustment"
        )
    if made is not None:
        record(
            session,
            actor,
            "ledger.adjust_request",
            "member",
            str(member_id),
            details={
                **_facts(adj, cur.precision),
                "ceiling": fmt(_ceiling(cur), cur.precision),
            },
        )
    return Requested(cur, adjustment=adj)


def post(
    session: Session,
    *,
    member_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    reason: str,
    actor: str,
    key: str,
    approved_by: str | None = None,
    adjustment_id: uuid.UUID | None = None,
) -> tuple[Entry, CurrencySpec]:
    """Post an adjustment to the ledger: the entry (kind ``adjust``, the reason as its
    description; a positive amount is a new lot available at once with the currency's
    expiry, a negative one draws FIFO and never leaves a debt), a ``points.adjusted``
    event and an audit row ``ledger.adjust`` with the balance before and after (and who
    approved it). Above the currency's ceiling only with ``approved_by``, someone other
    than ``actor``."""
    cur, reason = check(
        session, member_id=member_id, currency=currency, amount=amount, reason=reason
    )
    if cur.needs_approval(amount) and approved_by in (None, actor):
        raise Problem(
            403,
            "adjustment_needs_approval",
            f"more than {fmt(_ceiling(cur), cur.precision)} {cur.code} needs a second person",
        )
    # the wallet's lock first: a copy of this request sent at the same moment waits here,
    # then finds the entry and writes no second event or audit row
    ledger.lock_wallets(session, [(member_id, cur.code)])
    found = ledger.entry_by_key(
        session, key, kind="adjust", member_id=member_id, currency=cur.code, amount=abs(amount)
    )
    if found is not None:  # a retry: the first one's entry, nothing written again
        return found, cur
    before = ledger.balances(session, member_id)
    if amount > 0:
        entry = ledger.credit(
            session,
            key=key,
            kind="adjust",
            member_id=member_id,
            currency=cur.code,
            amount=amount,
            actor=actor,
            description=reason,
            counter="adjustment",
            tz=current_program(session).spec.timezone,
            pending_days=0,
        )
    else:
        entry = ledger.debit(
            session,
            key=key,
            kind="adjust",
            member_id=member_id,
            currency=cur.code,
            amount=-amount,
            actor=actor,
            description=reason,
            counter="adjustment",
        )
    after = ledger.balances(session, member_id)
    emit(
        session,
        "points.adjusted",
        {
            "member_id": str(member_id),
            "currency": cur.code,
            "amount": fmt(amount, cur.precision),
            "reason": reason,
            "entry_id": str(entry.id),
            "adjustment_id": None if adjustment_id is None else str(adjustment_id),
        },
        member_id=member_id,
    )

    def one(items: list[ledger.Balance]) -> dict[str, Any]:
        return next((dict(b.as_json()) for b in items if b.currency == cur.code), {})

    details: dict[str, Any] = {
        "entry_id": str(entry.id),
        "currency": cur.code,
        "amount": fmt(amount, cur.precision),
        "reason": reason,
    }
    if approved_by is not None:
        details |= {"approved_by": approved_by, "adjustment_id": str(adjustment_id)}
    record(
        session,
        actor,
        "ledger.adjust",
        "member",
        str(member_id),
        before=one(before),
        after=one(after),
        details=details,
    )
    return entry, cur


def approve(session: Session, adjustment_id: uuid.UUID, actor: str) -> Adjustment:
    """Approve a pending adjustment and post it (``post``, as its requester, approved by
    ``actor``; audited ``ledger.adjust_approve``). The requester may not approve their
    own (403 ``adjustment_own_request``); a rejected one stays rejected (409
    ``adjustment_decided``); an approved one is answered as it is, nothing posted again.
    If the posting is refused (a negative adjustment beyond what the member now holds),
    the adjustment stays pending."""
    adj = _locked(session, adjustment_id)
    if adj.requested_by == actor:
        raise Problem(
            403, "adjustment_own_request", "someone other than the requester must approve it"
        )
    if adj.status == APPROVED:
        return adj
    if adj.status != PENDING:
        raise Problem(409, "adjustment_decided", f"adjustment {adj.id} is {adj.status}")
    entry, cur = post(
        session,
        member_id=adj.member_id,
        currency=adj.currency,
        amount=adj.amount,
        reason=adj.reason,
        actor=adj.requested_by,
        key=adj.key,
        approved_by=actor,
        adjustment_id=adj.id,
    )
    adj.status, adj.decided_by, adj.decided_at, adj.entry_id = APPROVED, actor, now(), entry.id
    session.flush()
    record(
        session,
        actor,
        "ledger.adjust_approve",
        "member",
        str(adj.member_id),
        before={"status": PENDING},
        after={"status": APPROVED},
        details={**_facts(adj, cur.precision), "entry_id": str(entry.id)},
    )
    return adj


def reject(session: Session, adjustment_id: uuid.UUID, actor: str, reason: str) -> Adjustment:
    """Reject a pending adjustment with a reason (audited ``ledger.adjust_reject``);
    nothing moves. Anyone who may approve may reject, the requester too (withdrawing
    it). A rejected one is answered as it is; an approved one cannot be (409
    ``adjustment_decided``: adjust back instead)."""
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise validation_problem([field_error("reason", "say why (3 characters at least)")])
    adj = _locked(session, adjustment_id)
    if adj.status == REJECTED:
        return adj
    if adj.status != PENDING:
        raise Problem(409, "adjustment_decided", f"adjustment {adj.id} is {adj.status}")
    adj.status, adj.decided_by, adj.decided_at = REJECTED, actor, now()
    adj.decision_note = reason
    session.flush()
    record(
        session,
        actor,
        "ledger.adjust_reject",
        "member",
        str(adj.member_id),
        before={"status": PENDING},
        after={"status": REJECTED},
        details={**_facts(adj, _precision(session, adj.currency)), "note": reason},
    )
    return adj


def get(session: Session, adjustment_id: uuid.UUID) -> Adjustment:
    adj = session.get(Adjustment, adjustment_id)
    if adj is None:
        raise Problem(404, "adjustment_not_found", f"no adjustment {adjustment_id}")
    return adj


def list_adjustments(
    session: Session,
    *,
    status: str | None = PENDING,
    member_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Adjustments newest first (ids are time-ordered): pending ones by default."""
    q = (
        with_precision(select(Adjustment), Adjustment.currency)
        .order_by(Adjustment.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        q = q.where(Adjustment.status == status)
    if member_id is not None:
        q = q.where(Adjustment.member_id == member_id)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(Adjustment.id < last)
    rows, nxt = pagination.page(list(session.execute(q).all()), limit, lambda r: r[0].id)
    return [adjustment_json(a, p) for a, p in rows], nxt


def adjustment_json(adj: Adjustment, precision: int | None = None) -> dict[str, Any]:
    """An adjustment as the API answers it (``amount`` signed, in the currency's places)."""
    p = 4 if precision is None else precision
    return {
        "id": str(adj.id),
        "member_id": str(adj.member_id),
        "currency": adj.currency,
        "amount": fmt(adj.amount, p),
        "reason": adj.reason,
        "status": adj.status,
        "requested_by": adj.requested_by,
        "requested_at": adj.requested_at.isoformat(),
        "decided_by": adj.decided_by,
        "decided_at": None if adj.decided_at is None else adj.decided_at.isoformat(),
        "decision_note": adj.decision_note,
        "entry_id": None if adj.entry_id is None else str(adj.entry_id),
    }


def adjustment_out(session: Session, adj: Adjustment) -> dict[str, Any]:
    return adjustment_json(adj, _precision(session, adj.currency))


# ---------------------------------------------------------------------------- helpers


def _locked(session: Session, adjustment_id: uuid.UUID) -> Adjustment:
    """The adjustment under its row lock (a concurrent decision waits for this one's
    commit, then reads what it decided); 404 ``adjustment_not_found``."""
    adj = session.execute(
        select(Adjustment)
        .where(Adjustment.id == adjustment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if adj is None:
        raise Problem(404, "adjustment_not_found", f"no adjustment {adjustment_id}")
    return adj


def _facts(adj: Adjustment, precision: int) -> dict[str, Any]:
    return {
        "adjustment_id": str(adj.id),
        "currency": adj.currency,
        "amount": fmt(adj.amount, precision),
        "reason": adj.reason,
        "requested_by": adj.requested_by,
    }


def _ceiling(cur: CurrencySpec) -> Decimal:
    assert cur.adjust_approval_above is not None
    return cur.adjust_approval_above


def _precision(session: Session, code: str) -> int:
    found = precision_of(session, code)
    return 4 if found is None else found


def _insert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if session.get_bind().dialect.name == "postgresql" else sqlite.Insert
