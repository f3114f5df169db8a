"""What other parts read of the audit log (the console's audit screen)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.audit.models import AuditEntry


def newest_entries(
    session: Session,
    *,
    action_prefix: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
    before: dt.datetime | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries newest first, optionally of actions starting with ``action_prefix`` (``%``
    taken literally as nothing), about one target, by one actor, before a moment."""
    q = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    if action_prefix:
        q = q.where(AuditEntry.action.like(action_prefix.replace("%", "") + "%"))
    if target_id:
        q = q.where(AuditEntry.target_id == target_id)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if before is not None:
        q = q.where(AuditEntry.occurred_at < before)
    return list(session.execute(q.limit(limit)).scalars())
