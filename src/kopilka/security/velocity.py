"""Velocity checks: patterns worth a person's look, flagged for review, never blocking.

The job ``security.velocity`` (every 30 s in ``kopilka worker``) reads the purchases of
members recorded since it last looked and notes each once (``note_purchase``, and
``note_redemption`` when points paid), at the time the till says it happened: the till's
hot path pays nothing for the checks, and an offline till's replay is judged by when its
receipts happened. Two rules look back over recent events:

- ``rapid_redemptions``: a member redeemed points ``VELOCITY_REDEMPTIONS`` times or more
  within ``VELOCITY_MINUTES`` minutes (a stolen card or code being drained);
- ``many_stores``: one card was used at ``VELOCITY_STORES`` different stores or more within
  ``VELOCITY_MINUTES`` minutes (a copied card used in several places at once).

A rule that fires writes one ``security_flags`` row per member and time slot (no floods)
and nothing else: a person reviews it (``GET /api/v1/security/flags``) and dismisses or
confirms it; blocking the member is a separate, audited action.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.core import pagination
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7_floor
from kopilka.security.models import SecurityFlag, VelocityEvent

VELOCITY_MINUTES = 10
VELOCITY_REDEMPTIONS = 5
VELOCITY_STORES = 3
KEEP_EVENTS_DAYS = 2
REVIEW_STATUSES = ("dismissed", "confirmed")


def _slot(at: dt.datetime, minutes: int) -> int:
    return int(at.timestamp()) // (minutes * 60)


def _flag(
    session: Session, rule: str, member_id: uuid.UUID, at: dt.datetime, details: dict[str, Any]
) -> SecurityFlag | None:
    key = f"{rule}:{member_id}:{_slot(at, VELOCITY_MINUTES)}"
    if session.execute(select(SecurityFlag.id).where(SecurityFlag.dedupe_key == key)).first():
        return None
    flag = SecurityFlag(rule=rule, member_id=member_id, dedupe_key=key, details=details)
    try:
        with session.begin_nested():
            session.add(flag)
            session.flush()
    except IntegrityError:  # a concurrent transaction flagged the same slot
        return None
    return flag


def _note(
    session: Session,
    member_id: uuid.UUID,
    kind: str,
    store: str | None,
    at: dt.datetime,
    purchase_id: uuid.UUID | None = None,
) -> None:
    session.add(
        VelocityEvent(member_id=member_id, kind=kind, store=store, at=at, purchase_id=purchase_id)
    )
    session.flush()


def _stores_since(session: Session, member_id: uuid.UUID, since: dt.datetime) -> list[str]:
    rows = session.execute(
        select(VelocityEvent.store)
        .where(
            VelocityEvent.member_id == member_id,
            VelocityEvent.at >= since,
            VelocityEvent.store.is_not(None),
        )
        .distinct()
    ).scalars()
    return sorted(s for s in rows if s is not None)


def note_purchase(
    session: Session,
    member_id: uuid.UUID,
    store: str,
    at: dt.datetime | None = None,
    purchase_id: uuid.UUID | None = None,
) -> list[SecurityFlag]:
    """Record that the member's card was used at ``store`` (not committed) and run the
    ``many_stores`` rule. Returns the flags raised now (usually none)."""
    at = at or now()
    _note(session, member_id, "purchase", store, at, purchase_id)
    return _many_stores(session, member_id, at)


def note_redemption(
    session: Session,
    member_id: uuid.UUID,
    store: str | None,
    at: dt.datetime | None = None,
    purchase_id: uuid.UUID | None = None,
) -> list[SecurityFlag]:
    """Record a redemption (not committed) and run both rules. Returns new flags."""
    at = at or now()
    _note(session, member_id, "redemption", store, at, purchase_id)
    since = at - dt.timedelta(minutes=VELOCITY_MINUTES)
    count = session.execute(
        select(func.count())
        .select_from(VelocityEvent)
        .where(
            VelocityEvent.member_id == member_id,
            VelocityEvent.kind == "redemption",
            VelocityEvent.at >= since,
            VelocityEvent.at <= at,
        )
    ).scalar_one()
    flags = []
    if count >= VELOCITY_REDEMPTIONS:
        flag = _flag(
            session,
            "rapid_redemptions",
            member_id,
            at,
            {"redemptions": count, "minutes": VELOCITY_MINUTES},
        )
        if flag is not None:
            flags.append(flag)
    return flags + _many_stores(session, member_id, at)


def _many_stores(session: Session, member_id: uuid.UUID, at: dt.datetime) -> list[SecurityFlag]:
    stores = _stores_since(session, member_id, at - dt.timedelta(minutes=VELOCITY_MINUTES))
    if len(stores) < VELOCITY_STORES:
        return []
    flag = _flag(
        session,
        "many_stores",
        member_id,
        at,
        {"stores": stores, "minutes": VELOCITY_MINUTES},
    )
    return [flag] if flag is not None else []


SCAN_BATCH = 2000

# ``(id, member_id, store, occurred_at, redeemed)`` of the purchases with a member recorded
# since a uuid7 floor, oldest first, at most n: ``kopilka.purchases.queries.recent_of_members``,
# handed over by ``kopilka.wiring`` (the purchases package cannot be imported from here:
# it reads members, which read through this package's crypto).
RecentPurchases = Callable[
    [uuid.UUID, int], Select[uuid.UUID, uuid.UUID | None, str, dt.datetime, Decimal]
]
_recent: list[RecentPurchases] = []


def use_purchases(recent: RecentPurchases) -> None:
    """Say where the recent purchases are read (``wiring.wire``)."""
    _recent[:] = [recent]


def scan_purchases(session: Session, at: dt.datetime | None = None) -> int:
    """Note every member's purchase recorded in the last ``2 × VELOCITY_MINUTES`` minutes
    that is not noted yet, oldest first, and run the rules on each. Idempotent (a purchase
    is noted once: ``velocity_events`` is unique by purchase and kind) and safe beside a
    second worker (the job's lease). Returns how many purchases were noted."""
    at = at or now()
    since = at - dt.timedelta(minutes=2 * VELOCITY_MINUTES)
    floor = uuid7_floor(int(since.timestamp() * 1000))
    noted = 0
    while True:
        if not _recent:
            raise RuntimeError("no purchases to scan: kopilka.wiring.wire() was not called")
        recent = _recent[0](floor, SCAN_BATCH)
        pid_ = recent.selected_columns.id
        rows = session.execute(
            recent.where(
                ~exists().where(VelocityEvent.purchase_id == pid_, VelocityEvent.kind == "purchase")
            )
        ).all()
        for pid, member_id, store, occurred_at, redeemed in rows:
            assert member_id is not None
            note_purchase(session, member_id, store, occurred_at, pid)
            if redeemed > 0:
                note_redemption(session, member_id, store, occurred_at, pid)
        noted += len(rows)
        session.commit()
        if len(rows) < SCAN_BATCH:
            return noted


def prune(session: Session, at: dt.datetime | None = None) -> int:
    """Delete velocity events older than the rules look back (a scheduled job)."""
    cutoff = (at or now()) - dt.timedelta(days=KEEP_EVENTS_DAYS)
    result = session.execute(delete(VelocityEvent).where(VelocityEvent.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def flag_json(f: SecurityFlag) -> dict[str, Any]:
    return {
        "id": str(f.id),
        "rule": f.rule,
        "member_id": str(f.member_id) if f.member_id else None,
        "details": f.details,
        "status": f.status,
        "created_at": f.created_at.isoformat(),
        "reviewed_by": f.reviewed_by,
        "reviewed_at": f.reviewed_at.isoformat() if f.reviewed_at else None,
        "review_note": f.review_note,
    }


def list_flags(
    session: Session,
    *,
    status: str | None = "open",
    member_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Flags newest first (ids are time-ordered)."""
    q = select(SecurityFlag).order_by(SecurityFlag.id.desc()).limit(limit + 1)
    if status is not None:
        q = q.where(SecurityFlag.status == status)
    if member_id is not None:
        q = q.where(SecurityFlag.member_id == member_id)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(SecurityFlag.id < last)
    shown, nxt = pagination.page(list(session.scalars(q)), limit)
    return [flag_json(f) for f in shown], nxt


def review_flag(
    session: Session, flag_id: uuid.UUID, status: str, actor: str, note: str | None = None
) -> SecurityFlag:
    """Close a flag as dismissed or confirmed (not committed; audited)."""
    if status not in REVIEW_STATUSES:
        raise validation_problem([field_error("status", "dismissed or confirmed")])
    flag = session.execute(
        select(SecurityFlag).where(SecurityFlag.id == flag_id).with_for_update()
    ).scalar_one_or_none()
    if flag is None:
        raise Problem(404, "flag_not_found", f"no flag {flag_id}")
    if flag.status != "open":
        raise Problem(409, "flag_reviewed", f"flag {flag_id} is {flag.status} already")
    flag.status = status
    flag.reviewed_by = actor
    flag.reviewed_at = now()
    flag.review_note = note
    session.flush()
    record(
        session,
        actor,
        "security.flag_review",
        "security_flag",
        str(flag.id),
        before={"status": "open"},
        after={"status": status},
        details={"rule": flag.rule, "member_id": str(flag.member_id)},
    )
    return flag
