"""What other parts read of the outbox (the metrics of ``/metrics``, the events webhook
deliveries carry)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
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
