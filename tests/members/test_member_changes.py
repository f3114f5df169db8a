"""Changing members: details, status, consents, look-up by name; uniqueness through the
blind indexes, also under concurrency."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.members.models import Member
from tests.conftest import KeyFactory

pytestmark = pytest.mark.usefixtures("program")


def _enrol(client: TestClient, h: dict[str, str], **body: object) -> dict[str, object]:
    r = client.post("/api/v1/members", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_details_change_and_stay_unique(client: TestClient, admin: dict[str, str]) -> None:
    a = _enrol(client, admin, phone="+79160000001", email="a@example.com")
    _enrol(client, admin, phone="+79160000002", email="b@example.com")
    # when A takes a new phone, email and name
    r = client.patch(
        f"/api/v1/members/{a['id']}",
        json={"phone": "8 916 000-00-09", "email": "A.New@Example.com", "name": "Анна Ли"},
        headers=admin,
    )
    # then A is found by them, and no more by the old ones
    assert r.status_code == 200, r.text
    assert (r.json()["phone"], r.json()["email"]) == ("+79160000009", "a.new@example.com")
    for q, n in (
        ("phone=%2B79160000009", 1),
        ("email=a.new@example.com", 1),
        ("name=%20%D0%B0%D0%BD%D0%BD%D0%B0%20%20%D0%BB%D0%B8", 1),  # " анна  ли"
        ("phone=%2B79160000001", 0),
        ("email=a@example.com", 0),
    ):
        assert len(client.get(f"/api/v1/members?{q}", headers=admin).json()["items"]) == n, q
    # when A asks for B's phone or email, then 409 member_exists naming the field
    for field, value in (("phone", "+79160000002"), ("email", "B@example.com")):
        r = client.patch(f"/api/v1/members/{a['id']}", json={field: value}, headers=admin)
        assert r.status_code == 409 and r.json()["code"] == "member_exists"
        assert [e["field"] for e in r.json()["errors"]] == [field]
    # and a phone can be cleared
    r = client.patch(f"/api/v1/members/{a['id']}", json={"phone": None}, headers=admin)
    assert r.json()["phone"] is None


def test_block_and_unblock(client: TestClient, auth: KeyFactory) -> None:
    manager, till = auth("manager"), auth("cashier")
    m = _enrol(client, manager, phone="+79160000001")
    r = client.post(
        f"/api/v1/members/{m['id']}/status",
        json={"status": "blocked", "reason": "ticket 1"},
        headers=manager,
    )
    assert r.status_code == 200 and r.json()["status"] == "blocked"
    assert (
        client.post(
            f"/api/v1/members/{m['id']}/status", json={"status": "active"}, headers=till
        ).status_code
        == 403
    )
    bad = client.post(
        f"/api/v1/members/{m['id']}/status", json={"status": "erased"}, headers=manager
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


def test_consent_history_keeps_source_and_text_version(
    client: TestClient, admin: dict[str, str]
) -> None:
    m = _enrol(
        client,
        admin,
        phone="+79160000001",
        consents={"sms": True},
        consent_source="pos",
        consent_text_version="2025-12",
    )
    r = client.post(
        f"/api/v1/members/{m['id']}/consents",
        json={"sms": False, "email": True, "source": "app", "text_version": "2026-01"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["current"] == {"email": True, "sms": False, "push": False}
    assert [
        (h["channel"], h["granted"], h["source"], h["text_version"]) for h in body["history"]
    ] == [
        ("sms", True, "pos", "2025-12"),
        ("email", True, "app", "2026-01"),
        ("sms", False, "app", "2026-01"),
    ]
    assert body["history"][1]["actor"].startswith("api_key:")
    # granting without saying which text was agreed to is refused
    r = client.post(
        f"/api/v1/members/{m['id']}/consents", json={"push": True, "source": "app"}, headers=admin
    )
    assert r.status_code == 422


def test_concurrent_enrolments_of_one_phone_make_one_member(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given eight tills enrolling the same phone at the same moment
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def enrol(i: int) -> None:
        barrier.wait()
        body = {"phone": "+79160000001", "external_id": f"E-{i}"}
        answers.append(client.post("/api/v1/members", json=body, headers=admin).status_code)

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one is created, the others answer 409 member_exists
    assert sorted(answers) == [201] + [409] * 7
    found = client.get("/api/v1/members?phone=%2B79160000001", headers=admin).json()["items"]
    assert len(found) == 1


def _events(db: Database, type_: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(
            s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.type == type_)
                .order_by(OutboxEvent.created_at)
            )
        )


def test_a_profile_edit_writes_member_updated_naming_fields_not_values(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    # given a member
    m = _enrol(client, admin, phone="+79160000001", email="a@example.com", name="Анна")
    # when their phone, name and birth date change (the email is sent unchanged)
    r = client.patch(
        f"/api/v1/members/{m['id']}",
        json={
            "phone": "+79160000009",
            "email": "a@example.com",
            "name": "Анна Ли",
            "birth_date": "1990-05-01",
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    # then one member.updated names the fields that changed, with no personal value
    [e] = _events(db, "member.updated")
    assert e.member_id == uuid.UUID(str(m["id"]))
    with db.session() as s:
        updated_at = s.get(Member, e.member_id).updated_at  # type: ignore[union-attr]
    assert e.data == {
        "member_id": m["id"],
        "changed": ["birth_date", "name", "phone"],
        "status": "active",
        "updated_at": updated_at.isoformat(),
    }
    body = json.dumps(e.data, ensure_ascii=False)
    for personal in ("+79160000009", "79160000009", "Анна", "1990", "a@example.com"):
        assert personal not in body
    # when the same values are sent again, then nothing changed and no event is written
    again = client.patch(f"/api/v1/members/{m['id']}", json={"name": "Анна Ли"}, headers=admin)
    assert again.status_code == 200
    assert len(_events(db, "member.updated")) == 1


def test_a_refused_edit_writes_no_member_updated(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    a = _enrol(client, admin, phone="+79160000001")
    _enrol(client, admin, phone="+79160000002")
    # when A asks for B's phone, then 409 and no event
    r = client.patch(f"/api/v1/members/{a['id']}", json={"phone": "+79160000002"}, headers=admin)
    assert r.status_code == 409
    assert _events(db, "member.updated") == []


def test_block_and_unblock_write_member_updated(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    manager = auth("manager")
    m = _enrol(client, manager, phone="+79160000001")
    # when the member is blocked, blocked again (no change) and unblocked
    for status in ("blocked", "blocked", "active"):
        r = client.post(
            f"/api/v1/members/{m['id']}/status",
            json={"status": status, "reason": "ticket 1"},
            headers=manager,
        )
        assert r.status_code == 200, r.text
    # then two member.updated events carry the new status, in order
    events = _events(db, "member.updated")
    assert [(e.data["changed"], e.data["status"]) for e in events] == [
        (["status"], "blocked"),
        (["status"], "active"),
    ]
    assert all(e.member_id == uuid.UUID(str(m["id"])) for e in events)
    assert set(events[0].data) == {"member_id", "changed", "status", "updated_at"}


def test_erasure_leaves_nothing_personal_in_member_updated(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    # given a member whose external id and email were changed
    m = _enrol(client, admin, phone="+79160000001", external_id="crm-1")
    client.patch(
        f"/api/v1/members/{m['id']}",
        json={"external_id": "crm-2", "email": "x@example.com"},
        headers=admin,
    )
    # when the member is erased
    assert client.post(f"/api/v1/members/{m['id']}/erase", headers=admin).status_code == 200
    # then the outbox's member.updated still names only the fields
    [e] = _events(db, "member.updated")
    assert e.data["changed"] == ["email", "external_id"]
    assert "crm-2" not in json.dumps(e.data) and "x@example.com" not in json.dumps(e.data)
