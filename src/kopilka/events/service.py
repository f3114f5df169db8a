"""Domain events through an outbox.

``emit`` writes the event in the caller's transaction, together with one pending webhook
delivery per subscribed endpoint (the outbox's consumer, ``kopilka.webhooks.service``,
registered by ``kopilka.wiring``): an event exists if and only if its change committed,
and once committed it cannot be lost. ``kopilka worker``
delivers it afterwards, at least once; receivers drop duplicates by the event ``id``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from kopilka.core.batch import Batch
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


class OutboxConsumer(Protocol):
    """What consumes the outbox: the rows each new event needs written beside it (webhook
    deliveries), in the event's transaction. ``kopilka.webhooks.service`` is the one."""

    def enqueue(
        self,
        session: Session,
        event_id: uuid.UUID,
        event_type: str,
        member_id: uuid.UUID | None,
        created_at: dt.datetime,
    ) -> int: ...

    def deliveries_of(
        self,
        session: Session,
        event_id: uuid.UUID,
        event_type: str,
        member_id: uuid.UUID | None,
        created_at: dt.datetime,
    ) -> list[dict[str, Any]]: ...

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


_INSERT = insert(cast(Table, OutboxEvent.__table__))


def _write(
    session: Session, events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None, str | None]]
) -> list[uuid.UUID]:
    """The rows, written with a Core statement (the unit of work of the ORM costs more
    than the insert itself on the purchase's hot path), and their webhook deliveries."""
    consumer = _the_consumer()
    if not events:
        return []
    ids: list[uuid.UUID] = []
    rows: list[dict[str, Any]] = []
    for type_, data, member_id, key in events:
        event_id, at = uuid7(), _created_at()
        ids.append(event_id)
        rows.append(
            {
                "id": event_id,
                "type": type_,
                "version": VERSION,
                "member_id": member_id,
                "key": key,
                "data": data,
                "created_at": at,
            }
        )
    session.execute(_INSERT, rows)
    for (type_, _, member_id, _), event_id, row in zip(events, ids, rows, strict=True):
        consumer.enqueue(session, event_id, type_, member_id, row["created_at"])
    return ids


def add_events_to_batch(
    batch: Batch,
    session: Session,
    events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None]],
) -> list[uuid.UUID]:
    """Several events ``(type, data, member_id)``, in this order, and their webhook
    deliveries, as parts of ``batch`` (written only with its guard's row): the same rows
    as ``emit_many``, in the statement of the change they tell of."""
    consumer = _the_consumer()
    if not events:
        return []
    ids = [uuid7() for _ in events]
    at = [_created_at() for _ in events]
    batch.add(
        "outbox_e",
        """  INSERT INTO outbox_events (id, type, version, member_id, key, data, created_at)
  SELECT x.id, x.type, :ev_version, x.member_id, NULL, CAST(x.data AS json), x.created_at
  FROM {guard}, unnest(CAST(:ev_id AS uuid[]), CAST(:ev_type AS text[]),
                       CAST(:ev_member AS uuid[]), CAST(:ev_data AS text[]),
                       CAST(:ev_at AS timestamptz[]))
    AS x(id, type, member_id, data, created_at)""",
        {
            "ev_version": VERSION,
            "ev_id": ids,
            "ev_type": [t for t, _, _ in events],
            "ev_member": [m for _, _, m in events],
            "ev_data": [json.dumps(d) for _, d, _ in events],
            "ev_at": at,
        },
    )
    rows = [
        row
        for (type_, _, member_id), event_id, created in zip(events, ids, at, strict=True)
        for row in consumer.deliveries_of(session, event_id, type_, member_id, created)
    ]
    if rows:
        batch.add(
            "outbox_d",
            """  INSERT INTO webhook_deliveries (id, event_id, endpoint_id, member_id, status,
                                  attempts, next_attempt_at, created_at)
  SELECT x.id, x.event_id, x.endpoint_id, x.member_id, 'pending', 0, x.at, x.at
  FROM {guard}, unnest(CAST(:wd_id AS uuid[]), CAST(:wd_event AS uuid[]),
                       CAST(:wd_endpoint AS uuid[]), CAST(:wd_member AS uuid[]),
                       CAST(:wd_at AS timestamptz[]))
    AS x(id, event_id, endpoint_id, member_id, at)""",
            {
                "wd_id": [r["id"] for r in rows],
                "wd_event": [r["event_id"] for r in rows],
                "wd_endpoint": [r["endpoint_id"] for r in rows],
                "wd_member": [r["member_id"] for r in rows],
                "wd_at": [r["created_at"] for r in rows],
            },
        )
    return ids


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
    _the_consumer().clear_cache()
