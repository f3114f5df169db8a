"""The review queue: staff approve or reject a flagged referral with a reason, audited; a
member sees only their own friends; a cashier enrols with a code but sees no referrals."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from tests.conftest import KeyFactory
from tests.referrals.conftest import Enrol, receipt
from tests.referrals.test_lifecycle import balance, friends, ledger_holds


def flagged(client: TestClient, admin: dict[str, str], enrol: Enrol) -> tuple[Any, Any]:
    """Anna, and a friend of hers with a throwaway mailbox who bought enough."""
    anna = enrol()
    olga = enrol(code=anna["referral_code"], email="olga@mailinator.com")
    r = client.post(
        "/api/v1/purchases", json=receipt("R-1", olga["card_number"], "1000"), headers=admin
    )
    assert r.status_code == 201, r.text
    return anna, olga


def audited(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as s:
        return [
            (a.action, a.details)
            for a in s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("referral.%"))
                .order_by(AuditEntry.id)
            )
        ]


def test_an_approved_referral_gets_its_rewards_pending_until_the_hold_ends(
    client: TestClient, db: Database, admin: dict[str, str], auth: KeyFactory, enrol: Enrol
) -> None:
    # given a flagged, qualified referral in the queue
    anna, _ = flagged(client, admin, enrol)
    manager = auth("manager")
    queue = client.get("/api/v1/referrals", params={"review": "pending"}, headers=manager).json()
    [waiting] = queue["items"]
    assert (waiting["status"], waiting["flags"], queue["next_cursor"]) == (
        "qualified",
        ["disposable_email"],
        None,
    )
    # when a manager approves it
    r = client.post(
        f"/api/v1/referrals/{waiting['id']}/approve",
        json={"note": "a real customer"},
        headers=manager,
    )
    # then its rewards are posted, pending until the hold ends, and the decision is audited
    assert r.status_code == 200, r.text
    assert (r.json()["review"], r.json()["status"]) == ("approved", "qualified")
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    assert audited(db) == [("referral.approve", {"note": "a real customer"})]
    # and a second approval is refused: it is not in the queue any more
    again = client.post(f"/api/v1/referrals/{waiting['id']}/approve", headers=manager)
    assert (again.status_code, again.json()["code"]) == (409, "referral_not_in_review")
    ledger_holds(db)


def test_a_rejected_referral_gives_nothing_and_says_why(
    client: TestClient, db: Database, admin: dict[str, str], auth: KeyFactory, enrol: Enrol
) -> None:
    anna, _ = flagged(client, admin, enrol)
    manager = auth("manager")
    [waiting] = client.get(
        "/api/v1/referrals", params={"review": "pending"}, headers=manager
    ).json()["items"]
    # when support rejects it without a reason; then 422 naming the field, nothing changes
    bad = client.post(f"/api/v1/referrals/{waiting['id']}/reject", json={}, headers=manager)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "reason")
    # when with a reason
    r = client.post(
        f"/api/v1/referrals/{waiting['id']}/reject",
        json={"reason": "the same person twice"},
        headers=manager,
    )
    # then it is rejected for good: review_rejected
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"], r.json()["review"]) == (
        "rejected",
        "review_rejected",
        "rejected",
    )
    assert balance(client, admin, anna["id"]) == ("0.00", "0.00")
    assert audited(db) == [("referral.reject", {"reason": "the same person twice"})]


def test_who_may_see_and_review_referrals(
    client: TestClient, admin: dict[str, str], auth: KeyFactory, enrol: Enrol
) -> None:
    # given a cashier who enrols a friend with Anna's code at the till
    anna = enrol()
    cashier = auth("cashier")
    olga = enrol(code=anna["referral_code"], headers=cashier)
    [ref] = friends(client, admin, anna["id"])
    # then the referral knows the till, and the cashier sees no referrals
    assert ref["friend"]["id"] == olga["id"]
    assert client.get("/api/v1/referrals", headers=cashier).status_code == 403
    assert client.get(f"/api/v1/members/{anna['id']}/referrals", headers=cashier).status_code == 403
    assert (
        client.post(f"/api/v1/referrals/{ref['id']}/approve", headers=auth("analyst")).status_code
        == 403
    )
    assert (
        client.get("/api/v1/referrals/00000000-0000-7000-8000-000000000000", headers=admin).json()[
            "code"
        ]
        == "referral_not_found"
    )


def test_a_members_export_holds_their_referrals_and_erasure_forgets_the_device(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Anna who invited Olga
    anna = enrol()
    olga = enrol(code=anna["referral_code"], name="Ольга Смирнова")
    # when each asks for their data
    mine = client.get(f"/api/v1/members/{anna['id']}/export", headers=admin)
    theirs = client.get(f"/api/v1/members/{olga['id']}/export", headers=admin)
    # then Anna's export lists her friend, masked, and Olga's says who referred her
    assert mine.status_code == 200, mine.text
    section = mine.json()["other"]["referrals"]
    assert section["referred_by"] is None
    assert [(f["friend"]["display_name"], f["status"]) for f in section["invited"]] == [
        ("Ольга С.", "joined")
    ]
    assert theirs.json()["other"]["referrals"]["referred_by"]["referrer_id"] == anna["id"]
    # and Olga's erasure keeps the referral (Anna's history) without her name
    r = client.post(f"/api/v1/members/{olga['id']}/erase", headers=admin)
    assert r.status_code == 200, r.text
    [ref] = friends(client, admin, anna["id"])
    assert ref["friend"]["id"] == olga["id"]
    assert "Ольга" not in ref["friend"]["display_name"]
