"""Push notifications sent by the worker for domain events (``points.earned``,
``points.expiring``, ``tier.changed``).

The events package has no handler registry yet, so this job reads the outbox itself
(``events.queries.member_events``):
events of those types, of members with a push subscription made before the event, not
yet handled (``push_notices``), within the last ``LOOKBACK``. Each event is claimed
(a ``push_notices`` row, committed) before anything is sent, so it is pushed at most once
even if the worker dies mid-way; the network calls happen outside any transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import and_, exists, update
from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.events.queries import member_events
from kopilka.memberapp import notices, push
from kopilka.memberapp.models import PushNotice, PushSubscription
from kopilka.program.service import current_program
from kopilka.spec.program import ProgramSpec

LOOKBACK = dt.timedelta(days=2)
BATCH = 100


@dataclass(frozen=True)
class PendingEvent:
    id: uuid.UUID
    type: str
    member_id: uuid.UUID
    data: dict[str, Any]


def pending_events(session: Session, at: dt.datetime, limit: int = BATCH) -> list[PendingEvent]:
    """Events to push, oldest first."""

    def unhandled(member_id: Any, created_at: Any, event_id: Any) -> list[Any]:
        subscribed_before = exists().where(
            and_(
                PushSubscription.member_id == member_id,
                PushSubscription.created_at <= created_at,
            )
        )
        handled = exists().where(PushNotice.event_id == event_id)
        return [subscribed_before, ~handled]

    rows = session.execute(
        member_events(notices.PUSHED_TYPES, at - LOOKBACK, limit, unhandled)
    ).all()
    return [PendingEvent(r[0], r[1], r[2], dict(r[3] or {})) for r in rows]


def _words(
    event: PendingEvent, spec: ProgramSpec, at: dt.datetime
) -> Callable[[str], dict[str, str]]:
    def message(lang: str) -> dict[str, str]:
        found = notices.message_for(event.type, event.data, spec, lang, at)
        assert found is not None  # only pushed types are pending
        return found

    return message


def push_events(session: Session, at: dt.datetime, http: requests.Session | None = None) -> int:
    """Push every pending event; how many notifications push services took."""
    total = 0
    while True:
        events = pending_events(session, at)
        if not events:
            return total
        keys = push.vapid_keys(session)
        spec = current_program(session).spec
        plans = []
        for event in events:
            session.add(PushNotice(event_id=event.id, member_id=event.member_id, handled_at=at))
            plans.append((event, push.targets(session, event.member_id)))
        session.commit()  # claimed before sending: at most once
        for event, to in plans:
            outcomes = push.deliver(keys, to, _words(event, spec, at), http)
            sent = push.record_outcomes(session, outcomes)
            session.execute(
                update(PushNotice).where(PushNotice.event_id == event.id).values(sent=sent)
            )
            session.commit()
            total += sent
        if len(events) < BATCH:
            return total


@job("memberapp.push", every_seconds=10)
def push_job(session: Session, at: dt.datetime) -> int:
    """Web Push notifications for points earned and expiring and tier changes."""
    with requests.Session() as http:
        return push_events(session, at, http)
