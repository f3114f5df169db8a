"""What other parts read of the outbox (the metrics of ``/metrics``, the events webhook
deliveries carry)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from kopilka.events.models import OutboxEvent as OutboxEvent  # the type other domains are handed


def events_written(session: Session) -> int:
    """How many domain events the outbox holds."""
    return session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()


def with_event(q: Any, event_id: Any) -> Select[Any]:
    """``q`` with the outbox event whose id is ``event_id`` joined and added as each row's
    last column (an ``OutboxEvent``)."""
    joined: Select[Any] = q.add_columns(OutboxEvent).join(OutboxEvent, OutboxEvent.id == event_id)
    return joined


def member_events(
    types: Collection[str],
    since: dt.datetime,
    limit: int,
    also: Callable[[Any, Any, Any], Sequence[ColumnElement[bool]]],
) -> Select[uuid.UUID, str, uuid.UUID | None, dict[str, Any]]:
    """``(id, type, member_id, data)`` of the events of these types about a member,
    written at ``since`` or later, that also meet the conditions ``also(member_id,
    created_at, id)`` builds on the outbox's columns: the oldest ``limit`` of them."""
    return (
        select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.member_id, OutboxEvent.data)
        .where(
            OutboxEvent.type.in_(types),
            OutboxEvent.created_at >= since,
            OutboxEvent.member_id.is_not(None),
            *also(OutboxEvent.member_id, OutboxEvent.created_at, OutboxEvent.id),
        )
        .order_by(OutboxEvent.created_at, OutboxEvent.id)
        .limit(limit)
    )


# ---------------------------------------------------------------------------- for the reports


def purchase_event_data(first_id: uuid.UUID) -> Select[dict[str, Any]]:
    """The ``data`` of the purchase events (types ``purchase.*``: a cancellation, a return)
    with ids from ``first_id`` on; ids are time-ordered, so those written at its moment or
    later."""
    return select(OutboxEvent.data).where(
        OutboxEvent.id >= first_id, OutboxEvent.type.like("purchase.%")
    )
