"""A referral from the friend's enrolment to the rewards standing, over HTTP, on both
databases: joined, qualified by the first receipt that pays enough, pending through the
hold, rewarded after it; reversed by a cancel or a return within the hold, and qualified
again by the next receipt; left alone by a return after the hold."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.ledger.verify import verify
from kopilka.referrals.service import release_due
from tests.conftest import Clock
from tests.referrals.conftest import Enrol, hold_over, receipt


def balance(client: TestClient, h: dict[str, str], member: str) -> tuple[str, str]:
    """(available, pending) BONUS."""
    b = client.get(f"/api/v1/members/{member}/balances", headers=h).json()["balances"]
    row = next(x for x in b if x["currency"] == "BONUS")
    return str(row["available"]), str(row["pending"])


def friends(client: TestClient, h: dict[str, str], member: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/members/{member}/referrals", headers=h)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def event_types(db: Database) -> list[str]:
    with db.session() as s:
        return [
            t
            for t in s.scalars(select(OutboxEvent.type).order_by(OutboxEvent.created_at))
            if t.startswith("referral.")
        ]


def release(db: Database, clock: Clock) -> int:
    with db.session() as s:
        done = release_due(s, clock.at)
        s.commit()
        return done


def ledger_holds(db: Database) -> None:
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_a_referral_is_joined_qualified_held_and_rewarded(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given a member and a friend enrolled with their code
    anna = enrol(name="Анна Петрова")
    olga = enrol(code=anna["referral_code"], name="Ольга Смирнова")
    # then the referral is joined, and Anna sees Olga masked
    [joined] = friends(client, admin, anna["id"])
    assert {k: joined[k] for k in ("status", "reason", "review", "flags", "rewards")} == {
        "status": "joined",
        "reason": None,
        "review": "none",
        "flags": [],
        "rewards": [],
    }
    assert joined["friend"] == {"id": olga["id"], "display_name": "Ольга С."}
    # when Olga buys for 999.99: below the minimum, nothing happens
    r = client.post(
        "/api/v1/purchases", json=receipt("R-1", olga["card_number"], "999.99"), headers=admin
    )
    assert r.status_code == 201, r.text
    assert friends(client, admin, anna["id"])[0]["status"] == "joined"
    # when she buys for 1200 (two lines)
    r = client.post(
        "/api/v1/purchases", json=receipt("R-2", olga["card_number"], "700", "500"), headers=admin
    )
    assert r.status_code == 201, r.text
    bought = r.json()["id"]
    # then it qualifies: both rewards pending until the hold ends (14 days after the receipt)
    [q] = friends(client, admin, anna["id"])
    assert q["status"] == "qualified"
    assert q["hold_until"] == "2026-12-19T11:00:00+00:00"
    assert q["rewards"] == [
        {
            "role": "referrer",
            "currency": "BONUS",
            "amount": "300.00",
            "coupon_pool": None,
            "available_at": "2026-12-19T11:00:00+00:00",
            "status": "pending",
        }
    ]
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    # Olga's 5 % of both receipts (49.99 + 60.00) is available, her 200 pending
    assert balance(client, admin, olga["id"]) == ("109.99", "200.00")
    # when the worker runs before the hold is over; then nothing changes
    assert release(db, referrals) == 0
    # when the hold is over
    hold_over(referrals)
    assert release(db, referrals) == 1
    # then the referral is rewarded and the points available
    [done] = friends(client, admin, anna["id"])
    assert (done["status"], done["rewards"][0]["status"]) == ("rewarded", "standing")
    assert balance(client, admin, anna["id"]) == ("300.00", "0.00")
    assert balance(client, admin, olga["id"]) == ("309.99", "0.00")
    assert event_types(db) == ["referral.joined", "referral.qualified", "referral.rewarded"]
    # and a return after the hold leaves the rewards standing
    r = client.post(
        f"/api/v1/purchases/{bought}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert friends(client, admin, anna["id"])[0]["status"] == "rewarded"
    assert balance(client, admin, anna["id"]) == ("300.00", "0.00")
    ledger_holds(db)


def test_a_referral_without_a_qualifying_receipt_in_its_window_is_closed(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given a friend who never buys enough
    anna = enrol()
    enrol(code=anna["referral_code"])
    # when the worker runs on the 30th day, then the referral is still open
    referrals.advance(days=29)
    release(db, referrals)
    assert friends(client, admin, anna["id"])[0]["status"] == "joined"
    # when it runs after the 30 days of the window
    referrals.advance(days=2)
    release(db, referrals)
    # then the referral is closed, and says why
    [ref] = friends(client, admin, anna["id"])
    assert (ref["status"], ref["reason"]) == ("rejected", "window_passed")
    assert event_types(db) == ["referral.joined", "referral.rejected"]
