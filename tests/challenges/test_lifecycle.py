"""Challenges end to end through the API, on both databases: a weekly challenge split at
Moscow's midnight, a completion rewarded once (points held, a badge), a return undoing
progress and the completion (the pending reward revoked, said in the history), a ladder
3 → 5 → 10, a streak using its grace week, opt-in against auto, custom-event and referral
goals, badges by rules and by hand."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.challenges.conftest import (
    BREAD,
    CAKE,
    CHALLENGE_PROGRAM,
    COFFEE,
    Enrol,
    all_items,
    apply,
    badges_of,
    balance,
    buy,
    events,
    ledger_holds,
    mine,
    receipt,
)
from tests.conftest import Clock

SUNDAY_2359 = "2026-12-06T23:59:00+03:00"
MONDAY_0001 = "2026-12-07T00:01:00+03:00"


def test_sunday_2359_and_monday_0001_land_in_different_weeks(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member
    anna = enrol()
    # when she buys a coffee at 23:59 on Sunday and another at 00:01 on Monday (Moscow)
    buy(client, admin, "R-1", anna["card_number"], SUNDAY_2359, COFFEE)
    buy(client, admin, "R-2", anna["card_number"], MONDAY_0001, COFFEE)
    # then each counts in its own week: one of five in week 49 (expired), one in week 50
    items = [i for i in all_items(client, admin, anna["id"]) if i["code"] == "five-coffees"]
    assert [(i["period"]["key"], i["status"], i["progress"]) for i in items] == [
        ("2026-W50", "active", {"value": "1", "target": "5"}),
        ("2026-W49", "expired", {"value": "1", "target": "5"}),
    ]
    assert items[0]["period"]["from"] == "2026-12-06T21:00:00+00:00"
    assert items[0]["period"]["to"] == "2026-12-13T21:00:00+00:00"


def test_a_completion_is_rewarded_once_and_a_return_takes_it_back_while_pending(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given four coffees this week, and a receipt of a cake alone (not counted)
    anna = enrol()
    ids = [
        buy(client, admin, f"R-{k}", anna["card_number"], "2026-12-08T10:00:00+03:00", COFFEE)
        for k in range(4)
    ]
    buy(client, admin, "R-CAKE", anna["card_number"], "2026-12-08T10:30:00+03:00", CAKE)
    assert mine(client, admin, anna["id"])["five-coffees"]["progress"] == {
        "value": "4",
        "target": "5",
    }
    # when the fifth coffee comes, with a cake
    fifth = buy(
        client, admin, "R-5", anna["card_number"], "2026-12-08T11:00:00+03:00", COFFEE, CAKE
    )
    # then the challenge is completed: 100 BONUS pending 14 days, and the badge
    item = mine(client, admin, anna["id"])["five-coffees"]
    assert (item["status"], item["progress"]) == ("completed", {"value": "5", "target": "5"})
    assert [(r["status"], r["points"], r["badge"]) for r in item["rewards"]] == [
        ("pending", {"currency": "BONUS", "amount": "100.0000"}, "coffee-lover")
    ]
    assert badges_of(client, admin, anna["id"]) == ["coffee-lover"]
    # 5 % of six receipts earned at once (4×200 + 150 + 350 = 1300 → 65.00), 30 + 50 of
    # the December visits' first two steps (six receipts of 100 or more), and 100 pending
    assert balance(client, admin, anna["id"]) == ("145.00", "100.00")
    # when a sixth coffee comes: nothing more is given
    buy(client, admin, "R-6", anna["card_number"], "2026-12-08T11:30:00+03:00", COFFEE)
    assert balance(client, admin, anna["id"]) == ("155.00", "100.00")
    # when the fifth receipt's coffee is returned: six coffees less one is still five
    r = client.post(
        f"/api/v1/purchases/{fifth}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert mine(client, admin, anna["id"])["five-coffees"]["status"] == "completed"
    # when a first receipt is cancelled too: four coffees are left
    r = client.post(f"/api/v1/purchases/{ids[0]}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    # then the completion is undone: the pending 100 revoked, the badge withdrawn
    item = mine(client, admin, anna["id"])["five-coffees"]
    assert (item["status"], item["progress"]) == ("active", {"value": "4", "target": "5"})
    assert [r["status"] for r in item["rewards"]] == ["revoked"]
    assert badges_of(client, admin, anna["id"]) == []
    assert balance(client, admin, anna["id"])[1] == "0.00"
    # and the member's history says so
    history = client.get(f"/api/v1/members/{anna['id']}/ledger", headers=admin).json()["items"]
    revoked = [h for h in history if h["kind"] == "challenge_revert"]
    assert len(revoked) == 1
    assert "reward revoked" in revoked[0]["description"]
    assert "Five coffees a week" in revoked[0]["description"]
    # when another coffee completes it again: a new reward
    buy(client, admin, "R-7", anna["card_number"], "2026-12-08T12:00:00+03:00", COFFEE)
    item = mine(client, admin, anna["id"])["five-coffees"]
    assert [r["status"] for r in item["rewards"]] == ["revoked", "pending"]
    assert [e for e in events(db) if e != "challenge.progressed"] == [
        "challenge.completed",
        "challenge.reverted",
        "challenge.completed",
    ]
    ledger_holds(db)


def test_a_return_after_the_hold_leaves_the_reward_standing(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    ids = [
        buy(client, admin, f"R-{k}", anna["card_number"], "2026-12-08T10:00:00+03:00", COFFEE)
        for k in range(5)
    ]
    challenges.advance(days=15)
    r = client.post(
        f"/api/v1/purchases/{ids[0]}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    items = [i for i in all_items(client, admin, anna["id"]) if i["code"] == "five-coffees"]
    past = next(i for i in items if i["period"]["key"] == "2026-W50")
    assert past["progress"]["value"] == "4"
    assert [r["status"] for r in past["rewards"]] == ["standing"]
    assert badges_of(client, admin, anna["id"]) == ["coffee-lover"]
    assert "challenge.reverted" not in events(db)
    ledger_holds(db)


def test_a_ladder_3_5_10(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    seen = []
    for k in range(10):
        buy(client, admin, f"R-{k}", anna["card_number"], "2026-12-08T10:00:00+03:00", CAKE)
        item = mine(client, admin, anna["id"])["december-visits"]
        seen.append((item["progress"]["value"], [s["done"] for s in item["steps"]].count(True)))
    assert seen == [
        ("1", 0), ("2", 0), ("3", 1), ("4", 1), ("5", 2),
        ("6", 2), ("7", 2), ("8", 2), ("9", 2), ("10", 3),
    ]  # fmt: skip
    item = mine(client, admin, anna["id"])["december-visits"]
    assert item["status"] == "completed"
    assert [(r["step"], r["points"]["amount"]) for r in item["rewards"]] == [
        (1, "30.0000"), (2, "50.0000"), (3, "100.0000"),
    ]  # fmt: skip
    assert "regular" in badges_of(client, admin, anna["id"])
    # 5 % of 10 × 150 = 75.00 earned, and 180 of steps (held 0 days: available)
    assert balance(client, admin, anna["id"]) == ("255.00", "0.00")
    ledger_holds(db)


def test_a_streak_uses_its_grace_week(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given bread bought in the weeks of 16 and 23 November, none in the week of 30
    # November, and then in the week of 7 December
    anna = enrol()
    for k, day in enumerate(("2026-11-17", "2026-11-24")):
        buy(client, admin, f"R-{k}", anna["card_number"], f"{day}T10:00:00+03:00", BREAD)
    assert mine(client, admin, anna["id"])["weekly-streak"]["progress"] == {
        "value": "2",
        "target": "3",
    }
    buy(client, admin, "R-3", anna["card_number"], "2026-12-08T10:00:00+03:00", BREAD)
    # then the run is three weeks, the missed one forgiven: 5 stamps
    item = mine(client, admin, anna["id"])["weekly-streak"]
    assert (item["status"], item["progress"]) == ("completed", {"value": "3", "target": "3"})
    assert item["streak"] == {"every": "week", "length": 3, "grace": 1}
    assert balance(client, admin, anna["id"], "STAMP") == ("5", "0")


def test_opt_in_counts_only_after_joining_and_auto_counts_for_all(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    event = {
        "type": "clothes_recycled",
        "member": {"card": anna["card_number"]},
        "occurred_at": "2026-12-08T11:00:00+03:00",
    }
    r = client.post("/api/v1/events", json={**event, "external_id": "E-0"}, headers=admin)
    assert r.status_code == 201, r.text
    # the event rule gave its badge; the opt-in challenge did not count (not joined)
    assert badges_of(client, admin, anna["id"]) == ["eco"]
    before = mine(client, admin, anna["id"])["recycle"]
    assert (before["joined"], before["progress"]["value"]) == (False, "0")
    # when she joins (twice: the same)
    for _ in range(2):
        r = client.post(f"/api/v1/members/{anna['id']}/challenges/recycle/join", headers=admin)
        assert r.status_code == 200, r.text
    assert r.json()["joined"] is True
    assert r.json()["period"]["from"] == "2026-12-08T09:00:00+00:00"
    assert r.json()["period"]["to"] == "2027-01-07T09:00:00+00:00"
    # then events after joining count: two complete it
    challenges.advance(minutes=10)
    for k in (1, 2):
        event["occurred_at"] = f"2026-12-08T12:0{k}:00+03:00"
        r = client.post("/api/v1/events", json={**event, "external_id": f"E-{k}"}, headers=admin)
        assert r.status_code == 201, r.text
    item = mine(client, admin, anna["id"])["recycle"]
    assert (item["status"], item["progress"]["value"]) == ("completed", "2")
    assert balance(client, admin, anna["id"]) == ("40.00", "0.00")
    # the auto challenges count without joining
    assert mine(client, admin, anna["id"])["five-coffees"]["joined"] is True
    # joining an unknown challenge
    r = client.post(f"/api/v1/members/{anna['id']}/challenges/nope/join", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "challenge_not_found")


def test_friends_who_qualify_advance_a_referral_goal(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    for k in range(2):
        r = client.post(
            "/api/v1/members",
            json={"phone": f"+7916444000{k}", "referral_code": anna["referral_code"]},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        friend = client.get(f"/api/v1/members/{r.json()['id']}", headers=admin).json()
        buy(
            client,
            admin,
            f"F-{k}",
            friend["card_number"],
            "2026-12-08T10:00:00+03:00",
            ("TV", None, "600"),
        )
        assert mine(client, admin, anna["id"])["two-friends"]["progress"]["value"] == str(k + 1)
    assert mine(client, admin, anna["id"])["two-friends"]["status"] == "completed"
    assert badges_of(client, admin, anna["id"]) == ["ambassador"]


def test_badges_by_hand_are_audited_and_refused_when_unknown(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    url = f"/api/v1/members/{anna['id']}/badges"
    r = client.post(url, json={"badge": "regular", "reason": "a loyal guest"}, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["code"], r.json()["source"]) == ("regular", "staff")
    r = client.post(url, json={"badge": "regular", "reason": "again"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "badge_already_held")
    r = client.post(url, json={"badge": "ghost", "reason": "nope"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "unknown_badge")
    assert r.json()["errors"][0]["field"] == "badge"
    r = client.post(url, json={"badge": "regular"}, headers=admin)
    assert r.status_code == 422
    assert badges_of(client, admin, anna["id"]) == ["regular"]
    r = client.post(f"{url}/regular/revoke", json={"reason": "by mistake"}, headers=admin)
    assert r.status_code == 204, r.text
    assert badges_of(client, admin, anna["id"]) == []
    r = client.post(f"{url}/regular/revoke", json={"reason": "by mistake"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "badge_not_held")
    audit = client.get("/api/v1/audit", params={"target_id": anna["id"]}, headers=admin).json()
    assert [a["action"] for a in audit["items"] if a["action"].startswith("badge.")] == [
        "badge.revoke",
        "badge.award",
    ]
    cat = client.get("/api/v1/badges", headers=admin).json()["items"]
    assert [b["code"] for b in cat] == ["coffee-lover", "regular", "eco", "ambassador"]
    assert cat[0]["image"] == "img/badges/coffee.svg"
    chals = client.get("/api/v1/challenges", headers=admin).json()["items"]
    assert [c["code"] for c in chals][:2] == ["five-coffees", "december-visits"]
    assert chals[0]["target"] == "5"


def test_a_held_receipt_counts_when_committed_not_before(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given a coffee held at the till (points reserved, nothing settled)
    anna = enrol()
    body = receipt("H-1", anna["card_number"], "2026-12-08T10:00:00+03:00", COFFEE)
    r = client.post("/api/v1/purchases", json={**body, "hold": True}, headers=admin)
    assert r.status_code == 201, r.text
    assert mine(client, admin, anna["id"])["five-coffees"]["progress"]["value"] == "0"
    # when the hold is committed
    c = client.post(f"/api/v1/purchases/{r.json()['id']}/commit", json={}, headers=admin)
    assert c.status_code == 200, c.text
    # then the coffee counts, once
    assert mine(client, admin, anna["id"])["five-coffees"]["progress"]["value"] == "1"
    assert events(db).count("challenge.progressed") == 2  # five coffees, December visits


def test_an_opt_in_counts_receipts_after_the_join_only(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given the five coffees made opt-in, and Anna joining at 12:00 (Moscow)
    apply(
        db,
        CHALLENGE_PROGRAM.replace(
            "  - code: five-coffees\n", "  - code: five-coffees\n    join: opt_in\n"
        ),
    )
    anna = enrol()
    buy(client, admin, "R-0", anna["card_number"], "2026-12-08T09:00:00+03:00", COFFEE)
    r = client.post(f"/api/v1/members/{anna['id']}/challenges/five-coffees/join", headers=admin)
    assert r.status_code == 200, r.text
    challenges.advance(minutes=30)
    # when a till's queue sends a coffee of 11:00 late, and another of 12:10 comes
    buy(client, admin, "R-1", anna["card_number"], "2026-12-08T11:00:00+03:00", COFFEE)
    buy(client, admin, "R-2", anna["card_number"], "2026-12-08T12:10:00+03:00", COFFEE)
    # then only the one after the join counts
    item = mine(client, admin, anna["id"])["five-coffees"]
    assert (item["joined"], item["progress"]["value"]) == (True, "1")
