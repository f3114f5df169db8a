"""A coupon reward claimed (staff or the member's app): the cost debited, a stock unit
taken, a personal code issued, ``reward.claimed``; all or nothing; idempotent by key."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from tests.rewards.conftest import Enrol, stickers_of, stock_left


def pool(client: TestClient, h: dict[str, str], name: str = "FREE-COFFEE") -> dict[str, Any]:
    r = client.post(
        "/api/v1/coupon-pools",
        json={"name": name, "reward": {"kind": "percent", "value": "100"}},
        headers=h,
    )
    assert r.status_code == 201, r.text
    got: dict[str, Any] = r.json()
    return got


def claim(
    client: TestClient, h: dict[str, str], member_id: str, code: str = "coffee", key: str = "k-1"
) -> Any:
    return client.post(
        f"/api/v1/members/{member_id}/rewards/{code}/claim",
        headers={**h, "Idempotency-Key": key},
    )


def test_a_coupon_reward_claimed_debits_takes_stock_and_issues_a_code(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given the coffee pool and a member with 25 stickers
    pool(client, admin)
    m = enrol("25")
    # when the coffee is claimed
    r = claim(client, admin, m["id"])
    # then 10 stickers are debited, one coffee taken, a code issued
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["reward"], got["status"], got["channel"]) == ("coffee", "claimed", "app")
    assert got["cost"] == {"currency": "STICKER", "amount": "10"}
    assert got["coupon_code"]
    assert stickers_of(client, admin, m["id"]) == "15"
    assert stock_left(client, admin, "coffee") == 2
    codes = client.get(f"/api/v1/members/{m['id']}/coupons", headers=admin).json()["items"]
    assert [c["code"] for c in codes] == [got["coupon_code"]]
    with db.session() as s:
        [data] = s.execute(
            select(OutboxEvent.data).where(OutboxEvent.type == "reward.claimed")
        ).scalars()
    assert (data["reward"], data["coupon_code"]) == ("coffee", got["coupon_code"])
    # when the same request comes again (same key), nothing more happens
    again = claim(client, admin, m["id"])
    assert (again.status_code, again.json()["id"]) == (201, got["id"])
    assert stickers_of(client, admin, m["id"]) == "15"
    assert stock_left(client, admin, "coffee") == 2


def test_a_claim_without_enough_stickers_changes_nothing(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    pool(client, admin)
    m = enrol("9")
    r = claim(client, admin, m["id"])
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "insufficient_balance"
    assert stickers_of(client, admin, m["id"]) == "9"
    assert stock_left(client, admin, "coffee") == 3


def test_a_till_reward_cannot_be_claimed_and_an_unknown_one_is_404(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("100")
    r = claim(client, admin, m["id"], "towel-1r")
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "code")
    r = claim(client, admin, m["id"], "nope", key="k-2")
    assert (r.status_code, r.json()["code"]) == (404, "reward_not_found")
    assert stickers_of(client, admin, m["id"]) == "100"


def test_the_catalogue_lists_every_reward_with_its_stock_left(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    r = client.get("/api/v1/rewards", headers=admin)
    assert r.status_code == 200, r.text
    towel, coffee = r.json()["items"]
    assert towel == {
        "code": "towel-1r",
        "name": {"ru": "Полотенце за 1 ₽", "en": "Towel for 1 RUB"},
        "description": None,
        "image": None,
        "cost": {"currency": "STICKER", "amount": "30"},
        "gives": {"sku": "TOWEL-01", "price": "1.00"},
        "kind": "till",
        "stock": 5,
        "stock_left": 5,
        "taken": 0,
        "available": {"from": "2026-11-01", "to": "2027-04-15"},
        "available_now": True,
        "per_member": None,
    }
    assert (coffee["kind"], coffee["gives"], coffee["stock_left"]) == (
        "coupon",
        {"coupon_pool": "FREE-COFFEE"},
        3,
    )
