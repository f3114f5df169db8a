"""Stickers earned per full 300 ₽ and spent at the till: a towel for 1 ₽ and 30 stickers,
bought, held, cancelled and returned; refused when the member lacks the stickers or the
stock is gone (both databases, pinned clock)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.ledger.verify import verify
from kopilka.purchases.holds import release_expired_holds
from kopilka.purchases.models import Purchase
from kopilka.rewards.models import RewardClaim, RewardStock
from tests.rewards.conftest import (
    TOWEL,
    Enrol,
    apply,
    line,
    receipt,
    stickers_of,
    stock_left,
)


def confirm(client: TestClient, h: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/purchases", json=body, headers=h)
    assert r.status_code == 201, r.text
    got: dict[str, Any] = r.json()
    return got


def test_stickers_per_full_300_of_a_receipt_after_discounts(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member without stickers
    m = enrol()
    # when a 700 ₽ receipt with 10 % off its 400 ₽ line (660 ₽ paid) is confirmed
    p = confirm(
        client, admin, receipt("R-1", m["card_number"], line("SALE", "400.00"), line("B", "300.00"))
    )
    # then 2 stickers: the full 300s of the 660 paid
    assert p["total_due"] == "660.00"
    assert [e["amount"] for e in p["earned"] if e["currency"] == "STICKER"] == ["2"]
    assert stickers_of(client, admin, m["id"]) == "2"
    # and 599.99 paid gives one
    p = confirm(client, admin, receipt("R-2", m["card_number"], line("SALE", "666.66")))
    assert p["total_due"] == "599.99"
    assert [e["amount"] for e in p["earned"] if e["currency"] == "STICKER"] == ["1"]


def test_the_discount_decides_a_full_300(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given 330 ₽ of a sale item: 297 ₽ paid after 10 % off
    m = enrol()
    p = confirm(client, admin, receipt("R-1", m["card_number"], line("SALE", "330.00")))
    # then no sticker: 300 ₽ before the discount does not count
    assert p["total_due"] == "297.00"
    assert [e for e in p["earned"] if e["currency"] == "STICKER"] == []


def test_sponsor_juice_gives_two_more_per_unit(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol()
    p = confirm(
        client,
        admin,
        receipt("R-1", m["card_number"], line("A", "250.00"), line("JUICE", "30.00", "3")),
    )
    assert [e["amount"] for e in p["earned"] if e["currency"] == "STICKER"] == ["7"]
    assert stickers_of(client, admin, m["id"]) == "7"


def test_a_towel_for_one_rouble_and_30_stickers_bought_and_returned(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member with 35 stickers and 5 towels in stock
    m = enrol("35")
    # when the till sells milk and a towel as the reward
    p = confirm(client, admin, receipt("R-1", m["card_number"], line("MILK", "100.00"), TOWEL))
    # then the towel line is charged 1 ₽: its discount is the rest of its price
    towel = p["lines"][1]
    assert (towel["reward"], towel["discount"], towel["total_due"]) == (
        "towel-1r",
        "498.00",
        "1.00",
    )
    assert "reward" not in p["lines"][0]
    assert p["total_due"] == "101.00"
    assert towel["earned"] == [] or all(e["amount"] in ("0", "0.00") for e in towel["earned"])
    [applied] = [a for a in p["applied_rules"] if a["effect"] == "reward_price"]
    assert applied == {
        "key": "reward:towel-1r",
        "version": None,
        "name": "Полотенце за 1 ₽",
        "effect": "reward_price",
        "reason": "30 STICKER for 1.00 a unit",
        "campaign": None,
        "currency": "RUB",
        "amount": "498.00",
        "lines": [2],
    }
    # and 30 stickers were debited, one towel taken
    assert stickers_of(client, admin, m["id"]) == "5"
    assert stock_left(client, admin, "towel-1r") == 4
    with db.session() as s:
        kinds = (
            s.execute(select(OutboxEvent.type).where(OutboxEvent.type == "reward.claimed"))
            .scalars()
            .all()
        )
    assert kinds == ["reward.claimed"]
    # when the towel is returned
    r = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 2, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # then 1 ₽ is refunded, the stickers and the towel are back
    assert r.json()["refund_due"] == "1.00"
    assert stickers_of(client, admin, m["id"]) == "35"
    assert stock_left(client, admin, "towel-1r") == 5
    with db.session() as s:
        claim = s.execute(select(RewardClaim)).scalar_one()
    assert (claim.status, claim.returned_units) == ("returned", 1)


def test_calculate_shows_the_reward_and_changes_nothing(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("31")
    r = client.post(
        "/api/v1/purchases/calculate", json=receipt("C-1", m["card_number"], TOWEL), headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["total_due"], r.json()["lines"][0]["reward"]) == ("1.00", "towel-1r")
    assert stickers_of(client, admin, m["id"]) == "31"
    assert stock_left(client, admin, "towel-1r") == 5


def test_insufficient_stickers_is_422_naming_the_line_and_changes_nothing(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given 29 stickers
    m = enrol("29")
    body = receipt("R-1", m["card_number"], line("MILK", "100.00"), TOWEL)
    # when the till sells the towel
    r = client.post("/api/v1/purchases", json=body, headers=admin)
    # then 422 naming the reward line; nothing is recorded
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "insufficient_balance"
    assert [e["field"] for e in problem["errors"]] == ["lines[1].reward"]
    assert stickers_of(client, admin, m["id"]) == "29"
    assert stock_left(client, admin, "towel-1r") == 5
    assert client.get("/api/v1/purchases", headers=admin).json()["items"] == []
    # and calculate says so as a warning
    r = client.post("/api/v1/purchases/calculate", json=body, headers=admin)
    assert [(w["code"], w["field"]) for w in r.json()["warnings"]] == [
        ("insufficient_balance", "lines[1].reward")
    ]


def test_unknown_reward_or_a_coupon_reward_at_the_till_is_422_naming_the_field(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("100")
    for code, why in (("no-such", "unknown"), ("coffee", "not_at_till")):
        body = receipt("R-1", m["card_number"], line("X", "10.00", reward=code))
        r = client.post("/api/v1/purchases", json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("lines[0].reward", why)]
    assert stickers_of(client, admin, m["id"]) == "100"


def test_out_of_stock_is_reward_unavailable_and_the_member_keeps_the_stickers(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given one towel left and two members with enough stickers
    apply(db, towels=1)
    anna, boris = enrol("30"), enrol("40")
    confirm(client, admin, receipt("R-1", anna["card_number"], TOWEL))
    # when Boris asks for the towel too
    r = client.post(
        "/api/v1/purchases", json=receipt("R-2", boris["card_number"], TOWEL), headers=admin
    )
    # then it is gone: 422 reward_unavailable naming the line, Boris keeps his 40
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "reward_unavailable"
    assert [e["field"] for e in r.json()["errors"]] == ["lines[0].reward"]
    assert stickers_of(client, admin, boris["id"]) == "40"
    assert stock_left(client, admin, "towel-1r") == 0
    # and calculate says so as a warning
    r = client.post(
        "/api/v1/purchases/calculate",
        json=receipt("R-3", boris["card_number"], TOWEL),
        headers=admin,
    )
    assert [(w["code"], w["field"]) for w in r.json()["warnings"]] == [
        ("reward_unavailable", "lines[0].reward")
    ]


def test_outside_its_dates_is_reward_unavailable(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("30")
    body = receipt("R-1", m["card_number"], TOWEL, occurred_at="2026-10-31T12:00:00+03:00")
    r = client.post("/api/v1/purchases", json=body, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "reward_unavailable")
    assert stickers_of(client, admin, m["id"]) == "30"


def test_a_hold_reserves_the_reward_and_a_cancel_gives_it_back(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member with 30 stickers
    m = enrol("30")
    # when a held receipt sells the towel
    p = confirm(client, admin, receipt("H-1", m["card_number"], TOWEL, hold=True))
    assert p["status"] == "held"
    # then the stickers and the towel are reserved
    assert stickers_of(client, admin, m["id"]) == "0"
    assert stock_left(client, admin, "towel-1r") == 4
    # when the hold is cancelled
    r = client.post(f"/api/v1/purchases/{p['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    # then both are back
    assert stickers_of(client, admin, m["id"]) == "30"
    assert stock_left(client, admin, "towel-1r") == 5


def test_a_committed_hold_keeps_the_reward_and_its_cancel_gives_it_back(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("30")
    p = confirm(client, admin, receipt("H-1", m["card_number"], TOWEL, hold=True))
    r = client.post(f"/api/v1/purchases/{p['id']}/commit", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert stickers_of(client, admin, m["id"]) == "0"
    assert stock_left(client, admin, "towel-1r") == 4
    with db.session() as s:
        assert s.execute(select(RewardClaim.status)).scalar_one() == "claimed"
        claimed = s.scalar(select(func.count()).where(OutboxEvent.type == "reward.claimed"))
    assert claimed == 1
    r = client.post(f"/api/v1/purchases/{p['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert stickers_of(client, admin, m["id"]) == "30"
    assert stock_left(client, admin, "towel-1r") == 5


def test_a_return_of_the_earning_receipt_after_the_stickers_were_spent_shows_a_debt(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given 30 stickers earned on a 9000 ₽ receipt, spent on a towel
    m = enrol()
    earned = confirm(client, admin, receipt("R-1", m["card_number"], line("TV", "9000.00")))
    confirm(client, admin, receipt("R-2", m["card_number"], TOWEL))
    assert stickers_of(client, admin, m["id"]) == "0"
    # when the TV is returned
    r = client.post(
        f"/api/v1/purchases/{earned['id']}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert {"currency": "STICKER", "amount": "30"} in r.json()["points_revoked"]
    # then the wallet shows a debt of 30, and so does the sticker card
    assert stickers_of(client, admin, m["id"]) == "-30"
    r = client.get(f"/api/v1/members/{m['id']}/stickers?lang=en", headers=admin)
    assert r.status_code == 200, r.text
    card = r.json()
    [sticker_card] = card["cards"]
    assert (sticker_card["balance"], sticker_card["debt"]) == ("-30", "30")
    assert sticker_card["rewards"][0]["progress"] == {"have": "0", "need": "30", "enough": False}


def test_an_expired_hold_gives_the_reward_back(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a held receipt selling the towel
    m = enrol("30")
    p = confirm(client, admin, receipt("H-1", m["card_number"], TOWEL, hold=True))
    assert stickers_of(client, admin, m["id"]) == "0"
    # when its hold expires (the receipt's own clock: hold_minutes 15) and the job runs
    with db.session() as s:
        expires = s.execute(select(Purchase.hold_expires_at)).scalar_one()
        assert release_expired_holds(s, at=expires + dt.timedelta(seconds=1)) == 1
        s.commit()
    # then the stickers and the towel are back, and the claim is released
    assert client.get(f"/api/v1/purchases/{p['id']}", headers=admin).json()["status"] == "released"
    assert stickers_of(client, admin, m["id"]) == "30"
    assert stock_left(client, admin, "towel-1r") == 5
    with db.session() as s:
        assert s.execute(select(RewardClaim.status)).scalar_one() == "released"


def test_the_ledger_verifies_the_rewards_and_finds_a_stock_counter_moved_by_hand(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a towel sold, another returned, and a hold released
    m = enrol("100")
    confirm(client, admin, receipt("R-1", m["card_number"], TOWEL))
    p = confirm(client, admin, receipt("R-2", m["card_number"], TOWEL))
    client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    h = confirm(client, admin, receipt("H-1", m["card_number"], TOWEL, hold=True))
    client.post(f"/api/v1/purchases/{h['id']}/cancel", headers=admin)
    # then every invariant holds
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []
    # when the stock counter is moved by hand
    with db.session() as s:
        s.execute(update(RewardStock).values(taken=RewardStock.taken + 1))
        s.commit()
    # then verify says which reward
    with db.session() as s:
        breaches = verify(s, stop_at_first=False)
    assert [(b.check, b.examples) for b in breaches] == [
        ("reward_stock_matches_claims", ["towel-1r"])
    ]
