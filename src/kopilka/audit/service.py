"""The audit log: writing it in the caller's transaction (so it commits or rolls back with
the change it describes) and reading it a page at a time.

The table is append-only: database triggers refuse UPDATE and DELETE (migration 0201).
Rows never hold personal data in the clear: record field *names* for members, not values.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from kopilka.audit.models import AuditEntry
from kopilka.core import context
from kopilka.core.errors import field_error, validation_problem
from kopilka.core.logging import current_request_id


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit row (not committed): who (``actor``, e.g. ``api_key:<id>``) did what
    (``action``, e.g. ``ledger.adjust``) to which object, with before/after where useful."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        details=details,
        request_id=current_request_id(),
    )
    session.add(entry)
    facts = context.current()
    if facts is not None:
        # The request is audited by its domain record: the HTTP middleware adds no other.
        facts.audited.append(action)
    return entry


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "occurred_at": e.occurred_at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "before": e.before,
        "after": e.after,
        "details": e.details,
        "request_id": e.request_id,
    }


def _encode_cursor(e: AuditEntry) -> str:
    raw = f"{e.occurred_at.isoformat()}|{e.id.hex}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(hex=ident)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise validation_problem(
            [{**field_error("cursor", "not a cursor from this API"), "in": "query"}]
        ) from exc


def list_entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Audit rows newest first (by time, then id), filtered; ``action`` ending in ``.*``
    matches a prefix (``apikey.*``)."""
    q = (
        select(AuditEntry)
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
        .limit(limit + 1)
    )
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    if action is not None:
        if action.endswith(".*"):
            q = q.where(AuditEntry.action.startswith(action[:-1], autoescape=True))
        else:
            q = q.where(AuditEntry.action == action)
    if target_type is not None:
        q = q.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        q = q.where(AuditEntry.target_id == target_id)
    if since is not None:
        q = q.where(AuditEntry.occurred_at >= since)
    if until is not None:
        q = q.where(AuditEntry.occurred_at < until)
    if cursor:
        at, ident = _decode_cursor(cursor)
        q = q.where(
            or_(
                AuditEntry.occurred_at < at,
                and_(AuditEntry.occurred_at == at, AuditEntry.id < ident),
            )
        )
    rows = list(session.scalars(q))
    nxt = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return [entry_json(e) for e in rows[:limit]], nxt
