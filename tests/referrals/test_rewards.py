"""Rewards beyond points: a coupon for the friend, issued when the hold is over (a coupon
cannot wait), the referrer's bonus every N rewarded friends, and the programme's
auto-approval of flagged referrals after a wait."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.conftest import Clock
from tests.referrals.conftest import REFERRAL_PROGRAM, Enrol, apply, receipt
from tests.referrals.test_lifecycle import balance, friends, ledger_holds, release

COUPON_PROGRAM = REFERRAL_PROGRAM.replace(
    'friend_reward: {currency: BONUS, amount: "200"}', 'friend_reward: {coupon_pool: "Welcome"}'
).replace(
    "  limits: {per_referrer_per_month: 2}\n",
    "  limits: {per_referrer_per_month: 5}\n"
    '  bonus: {every: 2, reward: {currency: BONUS, amount: "1000"}}\n'
    "  review: {auto_approve_after_days: 3}\n",
)
assert COUPON_PROGRAM.count("coupon_pool") == 1 and "bonus:" in COUPON_PROGRAM


def buy(client: TestClient, h: dict[str, str], ext: str, card: str) -> None:
    r = client.post("/api/v1/purchases", json=receipt(ext, card, "1000"), headers=h)
    assert r.status_code == 201, r.text


def test_a_coupon_reward_is_issued_when_the_hold_is_over_and_the_bonus_every_second_friend(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given a programme giving the friend a coupon of "Welcome", and the referrer a bonus
    # every second rewarded friend
    apply(db, COUPON_PROGRAM)
    pool = client.post(
        "/api/v1/coupon-pools",
        json={"name": "Welcome", "reward": {"kind": "percent", "value": "10"}},
        headers=admin,
    )
    assert pool.status_code == 201, pool.text
    anna = enrol()
    olga, ivan = enrol(code=anna["referral_code"]), enrol(code=anna["referral_code"])
    # when both friends buy enough
    buy(client, admin, "R-1", olga["card_number"])
    buy(client, admin, "R-2", ivan["card_number"])
    # then nothing is issued yet: a coupon cannot wait for the hold
    assert client.get(f"/api/v1/members/{olga['id']}/coupons", headers=admin).json()["items"] == []
    # when the hold is over
    referrals.advance(days=15)
    assert release(db, referrals) == 2
    # then each friend has a personal Welcome code, said in the referral's rewards
    codes = client.get(f"/api/v1/members/{olga['id']}/coupons", headers=admin).json()["items"]
    assert [c["pool"]["name"] for c in codes] == ["Welcome"]
    [r] = client.get("/api/v1/referrals", params={"status": "rewarded"}, headers=admin).json()[
        "items"
    ][1:]
    assert [
        (x["role"], x["coupon_pool"], x["status"]) for x in r["rewards"] if x["role"] == "friend"
    ] == [("friend", "Welcome", "standing")]
    # and Anna has 300 for each friend and a bonus of 1000 for the second: 1600
    assert balance(client, admin, anna["id"]) == ("1600.00", "0.00")
    ledger_holds(db)


def test_a_flagged_referral_is_approved_by_the_programme_after_its_wait(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given a programme that approves flagged referrals after 3 days, and a flagged friend
    apply(db, COUPON_PROGRAM)
    anna = enrol()
    olga = enrol(code=anna["referral_code"], email="olga@yopmail.com")
    assert friends(client, admin, anna["id"])[0]["review"] == "pending"
    # when 2 days pass; then it still waits
    referrals.advance(days=2)
    release(db, referrals)
    assert friends(client, admin, anna["id"])[0]["review"] == "pending"
    # when the third day passes; then the worker approves it, and it goes on as any other
    referrals.advance(days=1, hours=1)
    release(db, referrals)
    assert friends(client, admin, anna["id"])[0]["review"] == "approved"
    buy(client, admin, "R-1", olga["card_number"])
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
