"""What other parts read of the webhooks' tables (the metrics of ``/metrics``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint


def deliveries_by_status(session: Session) -> dict[str, int]:
    """How many deliveries are ``pending``, ``delivered``, ``dead``."""
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return dict(rows.all())


def attempts_by_outcome(session: Session) -> dict[str, int]:
    """How many delivery attempts ended in each outcome."""
    rows = session.execute(
        select(DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.outcome)
    )
    return dict(rows.all())


def endpoints_by_active(session: Session) -> dict[bool, int]:
    """How many endpoints (not deleted) are active and inactive."""
    rows = session.execute(
        select(WebhookEndpoint.active, func.count())
        .where(WebhookEndpoint.deleted_at.is_(None))
        .group_by(WebhookEndpoint.active)
    )
    return dict(rows.all())
