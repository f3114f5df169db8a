"""Domain events through an outbox.

``emit`` writes the event in the caller's transaction, together with one pending webhook
delivery per subscribed endpoint (``kopilka.webhooks.service``): an event exists if and
only if its change committed, and once committed it cannot be lost. ``kopilka worker``
delivers it afterwards, at least once; receivers drop duplicates by the event ``id``.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.ids import uuid7
from kopilka.events.models import OutboxEvent

VERSION = 1

# Every type a subscriber may ask for (docs/events.md has a payload of each).
EVENT_TYPES = (
    "member.created",
    "member.updated",
    "purchase.confirmed",
    "purchase.held",
    "purchase.returned",
    "purchase.cancelled",
    "points.earned",
    "activity.recorded",
    "points.redeemed",
    "points.available",
    "points.expiring",
    "points.expired",
    "points.adjusted",
    "tier.changed",
    "coupon.redeemed",
    "webhook.disabled",
)

_clock_lock = threading.Lock()
_last_created: list[dt.datetime] = [dt.datetime.min.replace(tzinfo=dt.UTC)]


def _created_at() -> dt.datetime:
    """``now()``, but strictly increasing within the process: events written one after the
    other (a receipt and the points it earned) keep their order even within a microsecond
    or if the wall clock steps back, and deliveries per member follow that order."""
    t = now()
    with _clock_lock:
        if t <= _last_created[0]:
            t = _last_created[0] + dt.timedelta(microseconds=1)
        _last_created[0] = t
    return t


def emit(
    session: Session,
    type: str,
    data: dict[str, Any],
    *,
    member_id: uuid.UUID | None = None,
    key: str | None = None,
) -> uuid.UUID:
    """Write a domain event to the outbox in the caller's transaction (not committed).
    ``key`` (optional) makes emitting idempotent: the same key twice writes one event."""
    from kopilka.webhooks.service import enqueue

    if key is not None:
        found = session.execute(select(OutboxEvent.id).where(OutboxEvent.key == key)).scalar()
        if found is not None:
            return found
    at = _created_at()
    event = OutboxEvent(
        id=uuid7(),
        type=type,
        version=VERSION,
        member_id=member_id,
        key=key,
        data=data,
        created_at=at,
    )
    session.add(event)
    enqueue(session, event)
    return event.id


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """What a subscriber receives: ``{"id", "type", "version", "created_at", "data"}``."""
    return {
        "id": str(event.id),
        "type": event.type,
        "version": event.version,
        "created_at": event.created_at.isoformat(),
        "data": event.data,
    }


def clear_cache() -> None:
    """Forget the cached list of subscribed endpoints (tests; a new endpoint otherwise
    receives events written about a second after it was created)."""
    from kopilka.webhooks.service import clear_cache as clear

    clear()
