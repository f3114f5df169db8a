"""Adjustments above the currency's ceiling wait for a second person, over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.adjustments.models import Adjustment
from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from tests.adjustments.conftest import new_member
from tests.conftest import KeyFactory

pytestmark = pytest.mark.usefixtures("ceiling")

HUGE = {"currency": "BONUS", "amount": "999999999999", "reason": "a slip of the finger"}


def available(client: TestClient, h: dict[str, str], member: str) -> str:
    r = client.get(f"/api/v1/members/{member}/balances", headers=h)
    return str(r.json()["balances"][0]["available"])


def ledger_items(client: TestClient, h: dict[str, str], member: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"/api/v1/members/{member}/ledger", headers=h).json()[
        "items"
    ]
    return items


def audit(db: Database, prefix: str = "ledger.") -> list[AuditEntry]:
    with db.session() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like(f"{prefix}%"))
                .order_by(AuditEntry.occurred_at, AuditEntry.id)
            )
        )


def events(db: Database, type_: str) -> list[dict[str, Any]]:
    with db.session() as s:
        return [e.data for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == type_))]


def test_an_adjustment_above_the_ceiling_moves_nothing_until_someone_else_approves_it(
    client: TestClient, db: Database, auth: KeyFactory
) -> None:
    # given a member and two managers
    asker, approver = auth("manager"), auth("manager")
    m = new_member(client, asker)
    # when one of them adjusts by +999,999,999,999 (the amount)
    r = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=asker)
    # then it waits: 202 with its id, and nothing moved, nothing was announced
    assert r.status_code == 202, r.text
    pending = r.json()
    requester = pending["requested_by"]
    assert requester.startswith("api_key:")
    assert {k: pending[k] for k in ("member_id", "currency", "amount", "reason", "status")} == {
        "member_id": m,
        "currency": "BONUS",
        "amount": "999999999999.00",
        "reason": "a slip of the finger",
        "status": "pending_approval",
    }
    assert (pending["decided_by"], pending["entry_id"]) == (None, None)
    assert available(client, asker, m) == "0.00"
    assert ledger_items(client, asker, m) == []
    assert events(db, "points.adjusted") == []
    listed = client.get("/api/v1/adjustments", params={"status": "pending"}, headers=approver)
    assert listed.json() == {"items": [pending], "next_cursor": None}
    # when the requester tries to approve it themselves; then they may not
    own = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=asker)
    assert (own.status_code, own.json()["code"]) == (403, "adjustment_own_request")
    assert available(client, asker, m) == "0.00"
    # when the other manager approves it
    r = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=approver)
    # then it is posted, once, naming both people
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved"
    assert approved["decided_by"].startswith("api_key:") and approved["decided_by"] != requester
    assert available(client, asker, m) == "999999999999.00"
    items = ledger_items(client, asker, m)
    assert [(i["id"], i["kind"], i["amount"], i["description"]) for i in items] == [
        (approved["entry_id"], "adjust", "999999999999.00", "a slip of the finger")
    ]
    rows = [(a.action, a.actor) for a in audit(db)]
    assert rows == [
        ("ledger.adjust_request", requester),
        ("ledger.adjust", requester),
        ("ledger.adjust_approve", approved["decided_by"]),
    ]
    posted = audit(db, "ledger.adjust")[1]
    assert posted.details is not None
    assert (posted.details["approved_by"], posted.details["adjustment_id"]) == (
        approved["decided_by"],
        pending["id"],
    )
    assert posted.after is not None and posted.after["available"] == "999999999999.00"
    assert events(db, "points.adjusted") == [
        {
            "member_id": m,
            "currency": "BONUS",
            "amount": "999999999999.00",
            "reason": "a slip of the finger",
            "entry_id": approved["entry_id"],
            "adjustment_id": pending["id"],
        }
    ]
    # when it is approved again, by anyone who may; then the answer is the same, and
    # nothing is posted twice
    third = auth("admin")
    for h in (approver, third):
        again = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=h)
        assert (again.status_code, again.json()) == (200, approved)
    assert len(ledger_items(client, asker, m)) == 1
    # and it can no longer be rejected; it leaves the pending list
    late = client.post(
        f"/api/v1/adjustments/{pending['id']}/reject", json={"reason": "too late"}, headers=third
    )
    assert (late.status_code, late.json()["code"]) == (409, "adjustment_decided")
    assert client.get("/api/v1/adjustments", headers=third).json()["items"] == []
    done = client.get("/api/v1/adjustments", params={"status": "approved"}, headers=third)
    assert done.json()["items"] == [approved]
    assert client.get(f"/api/v1/adjustments/{pending['id']}", headers=third).json() == approved


def test_up_to_the_ceiling_is_posted_at_once_and_above_it_either_sign_waits(
    client: TestClient, auth: KeyFactory
) -> None:
    # given a member holding 20 000 BONUS (two adjustments at the ceiling)
    manager = auth("manager")
    m = new_member(client, manager)
    at_ceiling = {"currency": "BONUS", "amount": "10000.00", "reason": "at the ceiling"}
    for _ in range(2):
        r = client.post(f"/api/v1/members/{m}/adjustments", json=at_ceiling, headers=manager)
        assert (r.status_code, r.json()["amount"]) == (201, "10000.00")
    # when a cent more than the ceiling is taken away; then that waits too
    minus = {"currency": "BONUS", "amount": "-10000.01", "reason": "a large take-back"}
    r = client.post(f"/api/v1/members/{m}/adjustments", json=minus, headers=manager)
    assert (r.status_code, r.json()["status"], r.json()["amount"]) == (
        202,
        "pending_approval",
        "-10000.01",
    )
    assert available(client, manager, m) == "20000.00"
    # and a currency without a ceiling never waits
    stamps = {"currency": "STAMP", "amount": "1000000", "reason": "no ceiling here"}
    r = client.post(f"/api/v1/members/{m}/adjustments", json=stamps, headers=manager)
    assert r.status_code == 201


def test_a_rejected_adjustment_moves_nothing_and_cannot_be_approved(
    client: TestClient, db: Database, auth: KeyFactory
) -> None:
    # given a pending adjustment
    asker, decider = auth("manager"), auth("admin")
    m = new_member(client, asker)
    pending = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=asker).json()
    url = f"/api/v1/adjustments/{pending['id']}"
    # when it is rejected without a reason; then that is refused naming the field
    r = client.post(f"{url}/reject", json={"reason": " "}, headers=decider)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    assert [e["field"] for e in r.json()["errors"]] == ["reason"]
    r = client.post(f"{url}/reject", json={"reason": "  no  "}, headers=decider)
    assert (r.status_code, [e["field"] for e in r.json()["errors"]]) == (422, ["reason"])
    # when it is rejected with one
    r = client.post(f"{url}/reject", json={"reason": "nobody earns that much"}, headers=decider)
    # then it is closed, nothing moved, and approving it later is refused
    assert r.status_code == 200, r.text
    rejected = r.json()
    assert (rejected["status"], rejected["decision_note"], rejected["entry_id"]) == (
        "rejected",
        "nobody earns that much",
        None,
    )
    again = client.post(f"{url}/reject", json={"reason": "once more"}, headers=decider)
    assert (again.status_code, again.json()) == (200, rejected)
    r = client.post(f"{url}/approve", headers=auth("manager"))
    assert (r.status_code, r.json()["code"]) == (409, "adjustment_decided")
    assert available(client, asker, m) == "0.00" and ledger_items(client, asker, m) == []
    assert [a.action for a in audit(db)] == ["ledger.adjust_request", "ledger.adjust_reject"]
    assert events(db, "points.adjusted") == []


def test_the_requester_may_withdraw_their_own_by_rejecting_it(
    client: TestClient, auth: KeyFactory
) -> None:
    asker = auth("manager")
    m = new_member(client, asker)
    pending = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=asker).json()
    r = client.post(
        f"/api/v1/adjustments/{pending['id']}/reject",
        json={"reason": "typed one zero too many"},
        headers=asker,
    )
    assert (r.status_code, r.json()["status"]) == (200, "rejected")


def test_a_request_sent_again_with_its_idempotency_key_is_one_request(
    client: TestClient, db: Database, auth: KeyFactory
) -> None:
    asker = auth("manager")
    m = new_member(client, asker)
    h = {**asker, "Idempotency-Key": "big-one"}
    first = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=h)
    again = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=h)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    with db.session() as s:
        assert len(s.scalars(select(Adjustment)).all()) == 1


def test_an_approval_the_ledger_refuses_leaves_the_adjustment_pending(
    client: TestClient, db: Database, auth: KeyFactory
) -> None:
    # given a member holding 10 000 and a request to take 10 000.01 away
    asker, approver = auth("manager"), auth("manager")
    m = new_member(client, asker)
    fund = {"currency": "BONUS", "amount": "10000", "reason": "the starting balance"}
    assert (
        client.post(f"/api/v1/members/{m}/adjustments", json=fund, headers=asker).status_code == 201
    )
    minus = {"currency": "BONUS", "amount": "-10000.01", "reason": "more than held"}
    pending = client.post(f"/api/v1/members/{m}/adjustments", json=minus, headers=asker).json()
    # when it is approved; then the ledger refuses it and it still waits
    r = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=approver)
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_balance")
    assert client.get(f"/api/v1/adjustments/{pending['id']}", headers=approver).json() == pending
    assert available(client, asker, m) == "10000.00"
    assert "ledger.adjust_approve" not in [a.action for a in audit(db)]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**HUGE, "amount": "10000000000000"}, "validation_error", "amount"),
        ({**HUGE, "amount": "-10000000000000"}, "validation_error", "amount"),
        ({**HUGE, "amount": "99999999999.001"}, "validation_error", "amount"),
        ({**HUGE, "reason": "   "}, "validation_error", "reason"),
        ({**HUGE, "currency": "NOPE"}, "currency_not_found", "currency"),
    ],
)
def test_a_request_that_could_never_be_posted_is_refused_at_once(
    client: TestClient,
    db: Database,
    auth: KeyFactory,
    body: dict[str, str],
    code: str,
    field: str,
) -> None:
    manager = auth("manager")
    m = new_member(client, manager)
    r = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=manager)
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    with db.session() as s:
        assert s.scalars(select(Adjustment)).all() == []


def test_unknown_adjustments_and_who_may_decide(client: TestClient, auth: KeyFactory) -> None:
    admin = auth("admin")
    nobody = uuid.uuid4()
    for path in (f"/api/v1/adjustments/{nobody}/approve", f"/api/v1/adjustments/{nobody}"):
        method = client.post if path.endswith("approve") else client.get
        r = method(path, headers=admin)
        assert (r.status_code, r.json()["code"]) == (404, "adjustment_not_found")
    m = new_member(client, admin)
    pending = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=admin).json()
    for role in ("analyst", "cashier", "partner"):
        h = auth(role)
        assert client.get("/api/v1/adjustments", headers=h).status_code == 403
        r = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=h)
        assert r.status_code == 403
        r = client.post(
            f"/api/v1/adjustments/{pending['id']}/reject", json={"reason": "no"}, headers=h
        )
        assert r.status_code == 403
    with_entry = client.get(f"/api/v1/adjustments/{pending['id']}", headers=admin).json()
    assert with_entry["status"] == "pending_approval"
    r = client.get("/api/v1/adjustments", params={"status": "everything"}, headers=admin)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "status")


def test_pending_adjustments_page_with_a_cursor(client: TestClient, auth: KeyFactory) -> None:
    admin = auth("admin")
    m = new_member(client, admin)
    made = [
        client.post(
            f"/api/v1/members/{m}/adjustments",
            json={**HUGE, "amount": str(20000 + i)},
            headers=admin,
        ).json()["id"]
        for i in range(3)
    ]
    first = client.get("/api/v1/adjustments", params={"limit": 2}, headers=admin).json()
    assert [i["id"] for i in first["items"]] == made[:0:-1]
    rest = client.get(
        "/api/v1/adjustments", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([made[0]], None)
    other = new_member(client, admin, "+79160000002")
    mine = client.get("/api/v1/adjustments", params={"member_id": other}, headers=admin)
    assert mine.json()["items"] == []
