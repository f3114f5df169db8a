"""The outbox: events written in the transaction of their change, idempotent by key."""

from __future__ import annotations

import itertools
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.events import service as events
from kopilka.events.models import OutboxEvent
from kopilka.webhooks.models import Delivery
from tests.conftest import KeyFactory
from tests.receiver import subscribe


@pytest.mark.usefixtures("program")
def test_enrolment_writes_member_created(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # when a member enrols through the API
    r = client.post(
        "/api/v1/members",
        json={"phone": "+79160000001", "external_id": "crm-1"},
        headers=auth("admin"),
    )
    m = r.json()
    # then one member.created event describes it
    with db.session() as s:
        e = s.scalars(select(OutboxEvent)).one()
    assert (e.type, e.version, e.member_id, e.key) == (
        "member.created",
        1,
        uuid.UUID(m["id"]),
        None,
    )
    assert e.data == {
        "member_id": m["id"],
        "card_number": m["card_number"],
        "external_id": "crm-1",
        "referred_by": None,
    }
    assert events.envelope(e) == {
        "id": str(e.id),
        "type": "member.created",
        "version": 1,
        "created_at": e.created_at.isoformat(),
        "data": e.data,
    }


@pytest.mark.usefixtures("program")
def test_a_rejected_enrolment_writes_nothing(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    admin = auth("admin")
    client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
    r = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
    assert r.status_code == 409
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 1


def test_emit_is_not_committed_and_a_rollback_leaves_nothing(db: Database) -> None:
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1})
        s.rollback()
    with db.session() as s:
        event_id = events.emit(s, "member.updated", {"n": 2})
        s.commit()
    with db.session() as s:
        assert s.scalars(select(OutboxEvent.id)).all() == [event_id]


def test_the_same_key_writes_one_event(db: Database) -> None:
    with db.session() as s:
        first = events.emit(s, "points.expiring", {"n": 1}, key="expiring:x")
        again = events.emit(s, "points.expiring", {"n": 1}, key="expiring:x")
        s.commit()
    with db.session() as s:
        later = events.emit(s, "points.expiring", {"n": 1}, key="expiring:x")
        other = events.emit(s, "points.expiring", {"n": 1}, key="expiring:y")
        s.commit()
        assert first == again == later != other
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 2


def test_events_written_one_after_another_keep_their_order(db: Database) -> None:
    with db.session() as s:
        ids = [events.emit(s, "member.updated", {"n": n}) for n in range(200)]
        s.commit()
        rows = s.execute(select(OutboxEvent.id, OutboxEvent.created_at)).all()
    created = dict(rows)
    moments = [created[i] for i in ids]
    assert all(a < b for a, b in itertools.pairwise(moments))


def test_deliveries_only_for_subscribed_active_endpoints(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    admin = auth("admin")
    with db.session() as s:  # no endpoint: the event alone
        events.emit(s, "member.updated", {"n": 0})
        s.commit()
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    a = subscribe(client, admin, "http://127.0.0.1:9/a", ["member.updated"])
    b = subscribe(client, admin, "http://127.0.0.1:9/b", ["*"])
    c = subscribe(client, admin, "http://127.0.0.1:9/c", ["points.earned"])
    off = subscribe(client, admin, "http://127.0.0.1:9/d", ["*"])
    client.patch(f"/api/v1/webhooks/{off}", json={"active": False}, headers=admin)
    member = uuid.uuid4()
    with db.session() as s:
        event_id = events.emit(s, "member.updated", {"n": 1}, member_id=member)
        s.commit()
        rows = s.execute(
            select(Delivery.endpoint_id, Delivery.member_id, Delivery.status).where(
                Delivery.event_id == event_id
            )
        ).all()
    assert sorted(rows) == sorted(
        [(uuid.UUID(a), member, "pending"), (uuid.UUID(b), member, "pending")]
    )
    assert c != off
