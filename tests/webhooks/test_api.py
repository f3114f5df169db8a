"""The webhooks API: subscriptions, the delivery log, replay."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database, now
from kopilka.events import service as events
from kopilka.webhooks.models import Delivery, WebhookEndpoint
from kopilka.webhooks.service import Policy, claim
from tests.conftest import KeyFactory
from tests.receiver import SECRET, Receiver, drain, subscribe

URL = "http://127.0.0.1:9/hook"


def test_create_list_get_patch_without_ever_showing_the_secret(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    admin = auth("admin")
    # when an admin subscribes
    r = client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"url": URL, "events": ["purchase.confirmed"], "secret": SECRET, "description": "crm"},
    )
    # then the answer describes it, without the secret
    assert r.status_code == 201
    body = r.json()
    hook = body["id"]
    assert body == {
        "id": hook,
        "url": URL,
        "events": ["purchase.confirmed"],
        "description": "crm",
        "active": True,
        "disabled_reason": None,
        "consecutive_failures": 0,
        "created_at": body["created_at"],
    }
    analyst = auth("analyst")
    assert client.get("/api/v1/webhooks", headers=analyst).json() == {
        "items": [body],
        "next_cursor": None,
    }
    assert client.get(f"/api/v1/webhooks/{hook}", headers=analyst).json() == body
    # when it is changed (a new secret among other things)
    r = client.patch(
        f"/api/v1/webhooks/{hook}",
        headers=admin,
        json={"events": ["*"], "secret": "another-secret-0123456789", "active": False},
    )
    assert r.status_code == 200
    assert r.json()["events"] == ["*"]
    assert r.json()["active"] is False
    assert r.json()["disabled_reason"] == "disabled by an operator"
    assert "secret" not in r.json()
    with db.session() as s:
        e = s.get(WebhookEndpoint, uuid.UUID(hook))
        assert e is not None and e.secret == "another-secret-0123456789"
        audit = s.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == hook).order_by(AuditEntry.id)
        ).all()
        assert list(audit) == ["webhook.create", "webhook.update"]
        # the audit trail does not keep the secret either
        rows = s.scalars(select(AuditEntry)).all()
        assert rows and all(
            "another-secret" not in repr((a.before, a.after, a.details))
            and SECRET not in repr((a.before, a.after, a.details))
            for a in rows
        )


def test_a_generated_secret_is_shown_once(client: TestClient, auth: KeyFactory) -> None:
    admin = auth("admin")
    r = client.post("/api/v1/webhooks", headers=admin, json={"url": URL, "events": ["*"]})
    assert r.status_code == 201
    secret = r.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    got = client.get(f"/api/v1/webhooks/{r.json()['id']}", headers=admin).json()
    assert "secret" not in got


def test_bad_input_names_the_fields_and_changes_nothing(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    admin = auth("admin")
    r = client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"url": "not a url", "events": ["nope"], "secret": "short"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert {e["field"] for e in r.json()["errors"]} == {"url", "secret"}
    r = client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"url": URL, "events": ["member.created", "nope"], "secret": SECRET},
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "events[1]", "code": "unknown", "message": "unknown event type 'nope'"}
    ]
    r = client.post("/api/v1/webhooks", headers=admin, json={"url": URL, "events": []})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events"
    r = client.get("/api/v1/webhooks/not-a-uuid", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "webhook_not_found")  # as unknown
    r = client.get(f"/api/v1/webhooks/{uuid.uuid4()}", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "webhook_not_found")
    with db.session() as s:
        assert s.scalars(select(WebhookEndpoint)).all() == []


@pytest.mark.parametrize("role", ["analyst", "manager", "cashier"])
def test_only_admins_change_webhooks(client: TestClient, auth: KeyFactory, role: str) -> None:
    admin = auth("admin")
    hook = subscribe(client, admin, URL)
    other = auth(role)
    body = {"url": URL, "events": ["*"], "secret": SECRET}
    assert client.post("/api/v1/webhooks", headers=other, json=body).status_code == 403
    assert client.patch(f"/api/v1/webhooks/{hook}", headers=other, json={}).status_code == 403
    assert client.delete(f"/api/v1/webhooks/{hook}", headers=other).status_code == 403
    reads = client.get("/api/v1/webhooks", headers=other).status_code
    assert reads == (200 if role == "analyst" else 403)


def test_delete_hides_the_endpoint_and_retires_its_queue(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    admin = auth("admin")
    hook = subscribe(client, admin, URL)
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1})
        s.commit()
    # when it is deleted
    assert client.delete(f"/api/v1/webhooks/{hook}", headers=admin).status_code == 204
    # then it is gone from the API, its pending delivery is dead, and nothing is queued for it
    assert client.get(f"/api/v1/webhooks/{hook}", headers=admin).status_code == 404
    assert client.get("/api/v1/webhooks", headers=admin).json()["items"] == []
    assert client.delete(f"/api/v1/webhooks/{hook}", headers=admin).status_code == 404
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 2})
        s.commit()
        d = s.scalars(select(Delivery)).one()
        assert (d.status, d.last_error) == ("dead", "endpoint deleted")
    assert drain(db) == 0


@pytest.mark.usefixtures("program")
def test_delivery_log_with_attempts_and_replay(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given a receiver that failed until the delivery died
    admin = auth("admin")
    hook = subscribe(client, admin, receiver.url)
    receiver.status = 503
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1}, member_id=uuid.uuid4())
        s.commit()
    policy = Policy(max_attempts=2, base_seconds=0.001)
    drain(db, policy=policy)
    with db.session() as s:
        s.execute(Delivery.__table__.update().values(next_attempt_at=now()))
        s.commit()
    drain(db, policy=policy)
    # then the log shows it dead with both attempts
    page = client.get(f"/api/v1/webhooks/{hook}/deliveries?status=dead", headers=admin).json()
    assert len(page["items"]) == 1 and page["next_cursor"] is None
    item = page["items"][0]
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("dead", 2, 503)
    assert item["next_attempt_at"] is None
    detail = client.get(f"/api/v1/webhooks/{hook}/deliveries/{item['id']}", headers=admin).json()
    assert [(a["number"], a["outcome"], a["status_code"]) for a in detail["attempt_log"]] == [
        (1, "http_error", 503),
        (2, "http_error", 503),
    ]
    assert all(a["duration_ms"] >= 0 for a in detail["attempt_log"])
    assert (
        client.get(f"/api/v1/webhooks/{hook}/deliveries?status=pending", headers=admin).json()[
            "items"
        ]
        == []
    )
    # when the receiver is fixed and an operator replays it
    receiver.status = 200
    r = client.post(f"/api/v1/webhooks/{hook}/deliveries/{item['id']}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert drain(db, policy=policy) == 1
    # then it is delivered; its attempts go on numbering
    detail = client.get(f"/api/v1/webhooks/{hook}/deliveries/{item['id']}", headers=admin).json()
    assert detail["status"] == "delivered"
    assert [a["outcome"] for a in detail["attempt_log"]] == ["http_error", "http_error", "success"]
    assert [h.status for h in receiver.hits] == [503, 503, 200]
    # and a delivered one may be replayed too (the receiver lost it)
    r = client.post(f"/api/v1/webhooks/{hook}/deliveries/{item['id']}/replay", headers=admin)
    assert r.status_code == 200
    assert drain(db, policy=policy) == 1
    assert len(receiver.events()) == 2
    assert receiver.events()[0]["id"] == receiver.events()[1]["id"]


@pytest.mark.usefixtures("program")
def test_replay_every_dead_delivery(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    admin = auth("admin")
    hook = subscribe(client, admin, receiver.url)
    receiver.status = 500
    with db.session() as s:
        for n in range(3):
            events.emit(s, "member.updated", {"n": n}, member_id=uuid.uuid4())
        s.commit()
    drain(db, policy=Policy(max_attempts=1))
    receiver.status = 200
    # an unknown delivery, a bad body, a disabled endpoint: refused
    r = client.post(f"/api/v1/webhooks/{hook}/deliveries/{uuid.uuid4()}/replay", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "delivery_not_found")
    r = client.post(f"/api/v1/webhooks/{hook}/replay", headers=admin, json={"status": "pending"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    client.patch(f"/api/v1/webhooks/{hook}", headers=admin, json={"active": False})
    r = client.post(f"/api/v1/webhooks/{hook}/replay", headers=admin, json={})
    assert (r.status_code, r.json()["code"]) == (409, "webhook_inactive")
    client.patch(f"/api/v1/webhooks/{hook}", headers=admin, json={"active": True})
    # when all dead ones are replayed
    r = client.post(f"/api/v1/webhooks/{hook}/replay", headers=admin, json={"status": "dead"})
    assert r.json() == {"replayed": 3}
    assert drain(db) == 3
    assert sorted(e["data"]["n"] for e in receiver.events()) == [0, 1, 2]


@pytest.mark.usefixtures("program")
def test_a_delivery_in_flight_is_not_replayed(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given a delivery a worker has claimed and is sending (its lease runs 60 s)
    admin = auth("admin")
    hook = subscribe(client, admin, URL)
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1}, member_id=uuid.uuid4())
        s.commit()
    with db.session() as s:
        [claimed] = claim(s, 10, now(), 60)
    path = f"/api/v1/webhooks/{hook}/deliveries/{claimed.delivery_id}/replay"
    # when an operator replays it
    r = client.post(path, headers=admin)
    # then 409 delivery_in_flight, and the worker keeps its lease; nothing is audited
    assert (r.status_code, r.json()["code"]) == (409, "delivery_in_flight")
    with db.session() as s:
        d = s.get(Delivery, claimed.delivery_id)
        assert d is not None
        assert (d.status, d.attempts, d.leased_until) == ("pending", 0, claimed.leased_until)
        assert (
            s.scalars(select(AuditEntry.action).where(AuditEntry.action == "webhook.replay")).all()
            == []
        )
    # when the lease has run out (the worker died), then the replay is taken
    with db.session() as s:
        s.execute(Delivery.__table__.update().values(leased_until=now() - dt.timedelta(seconds=1)))
        s.commit()
    r = client.post(path, headers=admin)
    assert (r.status_code, r.json()["status"]) == (200, "pending")
    with db.session() as s:
        d = s.get(Delivery, claimed.delivery_id)
        assert d is not None and d.leased_until is None


def test_deliveries_page_with_a_cursor(client: TestClient, auth: KeyFactory, db: Database) -> None:
    admin = auth("admin")
    hook = subscribe(client, admin, URL)
    with db.session() as s:
        for n in range(5):
            events.emit(s, "member.updated", {"n": n})
        s.commit()
    seen: list[str] = []
    cursor = None
    while True:
        q = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = client.get(f"/api/v1/webhooks/{hook}/deliveries{q}", headers=admin).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    r = client.get(f"/api/v1/webhooks/{hook}/deliveries?cursor=zzz", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
