"""A qualifying receipt taken back within the hold revokes every reward exactly, and the
referral waits for the next qualifying receipt; taken back in part above the minimum, or
after the hold, nothing changes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.conftest import Clock
from tests.referrals.conftest import Enrol, receipt
from tests.referrals.test_lifecycle import balance, event_types, friends, ledger_holds, release


def buy(client: TestClient, h: dict[str, str], ext: str, card: str, *amounts: str) -> str:
    r = client.post("/api/v1/purchases", json=receipt(ext, card, *amounts), headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def give_back(client: TestClient, h: dict[str, str], purchase: str, ext: str, line: int) -> None:
    r = client.post(
        f"/api/v1/purchases/{purchase}/returns",
        json={"external_id": ext, "lines": [{"line_no": line, "quantity": "1"}]},
        headers=h,
    )
    assert r.status_code == 201, r.text


def test_a_return_in_pieces_revokes_the_rewards_when_it_leaves_less_than_the_minimum(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given Olga's qualifying receipt of 1000 + 300 + 200 = 1500
    anna = enrol()
    olga = enrol(code=anna["referral_code"])
    bought = buy(client, admin, "R-1", olga["card_number"], "1000", "300", "200")
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    # when she returns the 200: 1300 stays paid, at least the minimum
    give_back(client, admin, bought, "RET-1", 3)
    # then nothing changes
    assert friends(client, admin, anna["id"])[0]["status"] == "qualified"
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    # when she returns the 1000 too: 300 stays paid
    give_back(client, admin, bought, "RET-2", 1)
    # then both rewards are revoked, exactly, and the referral says why
    [back] = friends(client, admin, anna["id"])
    assert (back["status"], back["reason"]) == ("reversed", "purchase_returned")
    assert [r["status"] for r in back["rewards"]] == ["revoked"]
    assert balance(client, admin, anna["id"]) == ("0.00", "0.00")
    # Olga keeps the 5 % of what she kept (15.00) and loses the 200
    assert balance(client, admin, olga["id"]) == ("15.00", "0.00")
    ledger_holds(db)
    # when she buys again for 1000 within the window
    buy(client, admin, "R-2", olga["card_number"], "1000")
    # then the referral qualifies again, with new rewards
    [again] = friends(client, admin, anna["id"])
    assert (again["status"], again["reason"]) == ("qualified", None)
    assert [r["status"] for r in again["rewards"]] == ["revoked", "pending"]
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    assert event_types(db) == [
        "referral.joined",
        "referral.qualified",
        "referral.reversed",
        "referral.qualified",
    ]
    ledger_holds(db)


def test_a_cancel_within_the_hold_revokes_and_after_the_hold_nothing_moves(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given two referrals of Anna, both qualified
    anna = enrol()
    olga, ivan = enrol(code=anna["referral_code"]), enrol(code=anna["referral_code"])
    first = buy(client, admin, "R-1", olga["card_number"], "1500")
    # when Olga's receipt is cancelled within the hold
    r = client.post(f"/api/v1/purchases/{first}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    # then her referral is reversed: cancelled
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, anna["id"])}
    assert (by_friend[olga["id"]]["status"], by_friend[olga["id"]]["reason"]) == (
        "reversed",
        "purchase_cancelled",
    )
    assert balance(client, admin, olga["id"]) == ("0.00", "0.00")
    # when Ivan qualifies, the hold passes and the rewards stand
    second = buy(client, admin, "R-2", ivan["card_number"], "1500")
    referrals.advance(days=15)
    assert release(db, referrals) == 1
    # and his receipt is then returned in full
    give_back(client, admin, second, "RET-1", 1)
    # then his referral stays rewarded and Anna keeps her 300
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, anna["id"])}
    assert by_friend[ivan["id"]]["status"] == "rewarded"
    assert balance(client, admin, anna["id"]) == ("300.00", "0.00")
    ledger_holds(db)
