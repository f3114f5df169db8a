"""Jobs that turn time into events: points expiring soon, pending points now available."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database, now
from kopilka.events.models import OutboxEvent
from kopilka.ledger import notices as notice_jobs
from kopilka.ledger import service as ledger
from tests.conftest import KeyFactory


def _member(client: TestClient, auth: KeyFactory, phone: str = "+79160000001") -> uuid.UUID:
    r = client.post("/api/v1/members", json={"phone": phone}, headers=auth("admin"))
    return uuid.UUID(r.json()["id"])


def _credit(
    db: Database,
    member: uuid.UUID,
    amount: str,
    available_at: dt.datetime,
    expires_at: dt.datetime,
) -> uuid.UUID:
    with db.session() as s:
        entry = ledger.credit(
            s,
            key=f"test:{uuid.uuid4()}",
            kind="adjust",
            member_id=member,
            currency="BONUS",
            amount=Decimal(amount),
            actor="test",
            available_at=available_at,
            expires_at=expires_at,
        )
        s.commit()
        return entry.id


def _events(db: Database, type_: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(
            s.scalars(select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.id))
        )


@pytest.mark.usefixtures("program")
def test_points_expiring_within_a_week_are_announced_once(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given points expiring in 3 days and in 30 days
    member = _member(client, auth)
    t = now()
    soon = t + dt.timedelta(days=3)
    _credit(db, member, "10.50", t - dt.timedelta(days=1), soon)
    _credit(db, member, "5", t - dt.timedelta(days=1), t + dt.timedelta(days=30))
    # when the job runs, twice
    with db.session() as s:
        assert notice_jobs.expiring_notices(s, t) == 1
        s.commit()
        notice_jobs.expiring_notices(s, t + dt.timedelta(hours=1))
        s.commit()
    # then one notice, for the soon ones, amounts as the currency writes them
    notices = _events(db, "points.expiring")
    assert [(e.member_id, e.data) for e in notices] == [
        (
            member,
            {
                "member_id": str(member),
                "currency": "BONUS",
                "amount": "10.50",
                "expires_at": soon.astimezone(dt.UTC).isoformat(),
            },
        )
    ]


@pytest.mark.usefixtures("program")
def test_pending_points_are_announced_when_they_become_available(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given points pending for 2 hours, and points available at once
    member = _member(client, auth)
    t = now()
    matures = t + dt.timedelta(hours=2)
    entry = _credit(db, member, "7.25", matures, t + dt.timedelta(days=365))
    _credit(db, member, "3", t - dt.timedelta(seconds=1), t + dt.timedelta(days=365))
    with db.session() as s:
        # when the job runs before they mature: nothing
        assert notice_jobs.available_notices(s, t + dt.timedelta(hours=1)) == 0
        s.commit()
        # and after, twice: one notice
        notice_jobs.available_notices(s, t + dt.timedelta(hours=3))
        s.commit()
        notice_jobs.available_notices(s, t + dt.timedelta(hours=4))
        s.commit()
        # long after the look-back: not announced again nor late
        assert notice_jobs.available_notices(s, t + dt.timedelta(days=5)) == 0
    notices = _events(db, "points.available")
    assert [(e.member_id, e.key is not None, e.data) for e in notices] == [
        (
            member,
            True,
            {
                "member_id": str(member),
                "currency": "BONUS",
                "amount": "7.25",
                "available_at": matures.astimezone(dt.UTC).isoformat(),
                "entry_id": str(entry),
                "purchase_id": None,
            },
        )
    ]
