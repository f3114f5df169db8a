"""A moved clock stays inside its test (regression: a ledger test advanced Kopilka's clock by
days, the outbox's increasing-time guard kept that time, and every later test's events were
dated after it, so a worker on the real clock found none of their deliveries due)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events import service as events
from kopilka.events.models import OutboxEvent
from tests.conftest import Clock


def _created_at(db: Database, event_id: uuid.UUID) -> dt.datetime:
    with db.session() as s:
        at = s.execute(
            select(OutboxEvent.created_at).where(OutboxEvent.id == event_id)
        ).scalar_one()
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def test_1_an_event_written_a_year_ahead(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Kopilka's clock, the outbox's too, moved a year ahead of the real one
    monkeypatch.setattr(events, "now", clock)
    clock.at = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    # when an event is written
    with db.session() as s:
        event_id = events.emit(s, "member.updated", {"n": 1}, member_id=uuid.uuid4())
        s.commit()
    # then it carries the moved clock's time
    assert _created_at(db, event_id) == clock.at


def test_2_the_next_test_writes_at_the_real_time(db: Database) -> None:
    # when a test on the real clock writes an event after that one
    before = dt.datetime.now(dt.UTC)
    with db.session() as s:
        event_id = events.emit(s, "member.updated", {"n": 2}, member_id=uuid.uuid4())
        s.commit()
    after = dt.datetime.now(dt.UTC)
    # then its time is the real one, not a year ahead
    assert before <= _created_at(db, event_id) <= after
