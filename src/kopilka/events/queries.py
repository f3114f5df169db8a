"""What other parts read of the outbox (the metrics of ``/metrics``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.events.models import OutboxEvent


def events_written(session: Session) -> int:
    """How many domain events the outbox holds."""
    return session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()
