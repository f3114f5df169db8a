"""The audit log: append-only, every kind of action in it, read by admins a page at a time."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from kopilka.audit.service import record
from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM, KeyFactory

pytestmark = pytest.mark.usefixtures("program")


def test_the_audit_log_refuses_update_and_delete(db: Database) -> None:
    # given one audit row
    with db.session() as s:
        record(s, "test", "thing.done", "thing", "1", after={"x": 1})
        s.commit()
    # when someone tries to change or remove it in SQL, then the database refuses
    for statement in ("UPDATE audit_log SET actor = 'me'", "DELETE FROM audit_log"):
        with db.engine.connect() as c, pytest.raises(DatabaseError, match="append-only"):
            c.execute(text(statement))
    with db.engine.connect() as c:
        rows = c.execute(text("SELECT actor FROM audit_log WHERE action = 'thing.done'"))
        assert rows.scalars().all() == ["test"]


def test_admins_page_through_newest_first_with_filters(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given 5 rows of two actions
    with db.session() as s:
        for i in range(5):
            record(s, f"user:{i % 2}", "a.one" if i % 2 else "a.two", "thing", str(i))
        s.commit()
    admin = auth("admin")
    # when read two at a time
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        q = "/api/v1/audit?target_type=thing&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(q, headers=admin).json()
        seen += [e["target_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # then every row comes once, newest first
    assert seen == ["4", "3", "2", "1", "0"]
    only = client.get("/api/v1/audit?action=a.one", headers=admin).json()["items"]
    assert [e["target_id"] for e in only] == ["3", "1"]
    mine = client.get("/api/v1/audit?actor=user:0&target_type=thing", headers=admin).json()
    assert [e["target_id"] for e in mine["items"]] == ["4", "2", "0"]
    # and nobody but an admin reads it; a bad filter names the field
    for role in ("manager", "analyst", "cashier", "partner"):
        assert client.get("/api/v1/audit", headers=auth(role)).status_code == 403
    bad = client.get("/api/v1/audit?since=2026-01-01T00:00:00", headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"
    bad = client.get("/api/v1/audit?cursor=%%%", headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_programme_changes_are_audited_with_before_and_after(db: Database) -> None:
    # given the test programme in force, when a changed programme is applied
    changed = TEST_PROGRAM.replace("name: Test programme", "name: Renamed")
    with db.session() as s:
        program_service.apply_program(s, program_service.parse_program(changed), "user:anna")
        s.commit()
    program_service.invalidate_cache()
    with db.engine.connect() as c:
        rows = c.execute(
            text("SELECT actor, target_id FROM audit_log WHERE action = 'program.apply'")
        ).all()
    # then both versions are in the audit log, the second naming who and what changed
    assert [tuple(r) for r in rows] == [("test", "1"), ("user:anna", "2")]
    with db.session() as s:
        from kopilka.audit.service import list_entries

        entry = list_entries(s, action="program.apply", limit=1)[0][0]
    assert entry["before"]["version"] == 1 and entry["after"]["name"] == "Renamed"
    assert entry["details"] == {"changed": ["name"]}


def test_writes_without_a_domain_record_are_audited_by_route(
    client: TestClient, auth: KeyFactory
) -> None:
    # given a manager who changes a member's details and records their consent
    manager, admin = auth("manager"), auth("admin")
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=manager).json()
    r = client.post(
        f"/api/v1/members/{m['id']}/consents",
        json={"sms": True, "source": "call-centre", "text_version": "2026-01"},
        headers={**manager, "Idempotency-Key": "c-1"},
    )
    assert r.status_code == 201, r.text
    replay = client.post(
        f"/api/v1/members/{m['id']}/consents",
        json={"sms": True, "source": "call-centre", "text_version": "2026-01"},
        headers={**manager, "Idempotency-Key": "c-1"},
    )
    assert replay.status_code == 201
    client.patch(f"/api/v1/members/{m['id']}", json={"name": "Анна"}, headers=manager)
    client.post(f"/api/v1/members/{m['id']}/status", json={"status": "blocked"}, headers=manager)
    # then the audit log has the consent (once: the replay changed nothing), the change of
    # details (field names only) and the block, each naming the manager's key
    items = client.get(f"/api/v1/audit?target_id={m['id']}", headers=admin).json()["items"]
    assert [e["action"] for e in items] == ["member.status", "member.update", "http.post"]
    assert items[2]["details"]["route"] == "/api/v1/members/{member_id}/consents"
    assert items[1]["details"] == {"fields": ["name"]} and "Анна" not in str(items)
    assert items[0]["before"] == {"status": "active"} and items[0]["after"] == {"status": "blocked"}
    assert len({e["actor"] for e in items}) == 1 and items[0]["actor"].startswith("api_key:")
    # and enrolment (high volume, in the outbox) and failed requests are not
    assert client.get("/api/v1/audit?action=http.*", headers=admin).json()["items"] == [items[2]]
