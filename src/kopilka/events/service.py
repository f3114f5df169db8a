"""Domain events through an outbox.

``emit`` writes the event in the caller's transaction, together with one pending webhook
delivery per subscribed endpoint (the outbox's consumer, ``kopilka.webhooks.service``,
registered by ``kopilka.wiring``): an event exists if and only if its change committed,
and once committed it cannot be lost. ``kopilka worker``
delivers it afterwards, at least once; receivers drop duplicates by the event ``id``.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.ids import uuid7
from kopilka.core.plan import Plan, table
from kopilka.core.write import write
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


class OutboxConsumer(Protocol):
    """What consumes the outbox: the rows each new event needs written beside it (webhook
    deliveries), in the event's transaction. ``kopilka.webhooks.service`` is the one."""

    def plan_deliveries(
        self,
        plan: Plan,
        session: Session,
        events: Sequence[tuple[uuid.UUID, str, uuid.UUID | None, dt.datetime]],
    ) -> None:
        """Add to ``plan`` the rows the new events ``(id, type, member_id, created_at)``
        need beside them."""
        ...

    def clear_cache(self) -> None: ...


_consumer: list[OutboxConsumer] = []


def use_consumer(consumer: OutboxConsumer) -> None:
    """Say who consumes the outbox (once, from ``kopilka.wiring``; again replaces it)."""
    _consumer[:] = [consumer]


def _the_consumer() -> OutboxConsumer:
    # Loud rather than an event silently without its deliveries.
    if not _consumer:
        raise RuntimeError("no outbox consumer: kopilka.wiring.wire() was not called")
    return _consumer[0]


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
    if key is not None:
        found = session.execute(select(OutboxEvent.id).where(OutboxEvent.key == key)).scalar()
        if found is not None:
            return found
    return _write(session, [(type, data, member_id, key)])[0]


def emit_many(
    session: Session, events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None]]
) -> list[uuid.UUID]:
    """Several events ``(type, data, member_id)`` in one statement, in this order (a
    receipt and the points it moved)."""
    return _write(session, [(t, d, m, None) for t, d, m in events])


def _write(
    session: Session, events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None, str | None]]
) -> list[uuid.UUID]:
    plan = Plan()
    ids = _plan(plan, session, events)
    write(session, plan)
    return ids


def plan_events(
    plan: Plan,
    session: Session,
    events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None]],
) -> list[uuid.UUID]:
    """Several events ``(type, data, member_id)``, in this order, and their webhook
    deliveries, as parts of ``plan``: the rows ``emit_many`` writes, in the statement of
    the change they tell of."""
    return _plan(plan, session, [(t, d, m, None) for t, d, m in events])


def _plan(
    plan: Plan,
    session: Session,
    events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None, str | None]],
) -> list[uuid.UUID]:
    consumer = _the_consumer()
    if not events:
        return []
    made = [(uuid7(), type_, member_id, _created_at()) for type_, _, member_id, _ in events]
    plan.insert(
        table(OutboxEvent),
        [
            {
                "id": event_id,
                "type": type_,
                "version": VERSION,
                "member_id": member_id,
                "key": key,
                "data": data,
                "created_at": at,
            }
            for (event_id, type_, member_id, at), (_, data, _, key) in zip(
                made, events, strict=True
            )
        ],
    )
    consumer.plan_deliveries(plan, session, made)
    return [event_id for event_id, _, _, _ in made]


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """What a subscriber receives: ``{"id", "type", "version", "created_at", "data"}``."""
    return {
        "id": str(event.id),
        "type": event.type,
        "version": event.version,
        "created_at": event.created_at.isoformat(),
        "data": event.data,
    }


def redact_member(session: Session, member_id: uuid.UUID, keys: Sequence[str]) -> None:
    """Blank ``keys`` (those present and not already null) in the data of every event
    about the member (an erasure: a webhook replayed later does not bring them back)."""
    for event in session.scalars(select(OutboxEvent).where(OutboxEvent.member_id == member_id)):
        if any(event.data.get(k) is not None for k in keys):
            event.data = {
                **event.data,
                **{k: None for k in keys if k in event.data},
            }
    session.flush()


def clear_cache() -> None:
    """Forget the cached list of subscribed endpoints (tests; a new endpoint otherwise
    receives events written about a second after it was created)."""
    _the_consumer().clear_cache()
