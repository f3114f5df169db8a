"""A programme with leaderboards: money spent this month, BONUS earned ever, visits per
week (Moscow's weeks), visits per store and day, and a challenge's board (its challenge
counts receipts of 9,000 and more, which no other test makes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM, Clock

BOARDS = """
leaderboards:
  - {code: spenders, name: {ru: "Щедрые", en: "Big spenders"}, metric: spent, period: month}
  - code: bonus
    name: {ru: "Бонусы", en: "Bonus earned"}
    metric: points_earned
    currency: BONUS
    period: all
    size: 3
  - {code: regulars, name: {ru: "Завсегдатаи", en: "Regulars"}, metric: visits, period: week}
  - code: store-day
    name: {ru: "Гости магазина", en: "Store guests"}
    metric: visits
    period: day
    per_store: true
  - code: coffee
    name: {ru: "Кофеманы", en: "Coffee lovers"}
    metric: challenge
    challenge: five-coffees
    period: week
challenges:
  - code: five-coffees
    name: {ru: "Пять больших покупок", en: "Five big purchases"}
    goal: {count: purchases, target: 5, where: {min_receipt: "9000"}}
    period: {every: week}
    reward: {currency: BONUS, amount: "10"}
"""
LEADERBOARD_PROGRAM = TEST_PROGRAM + BOARDS

# Monday 7 December 2026, 15:00 in Moscow; receipts happen at or before it.
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
AT = "2026-12-07T14:00:00+03:00"


@pytest.fixture
def clock_start() -> dt.datetime:
    return NOW


def apply(db: Database, text: str) -> None:
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


@pytest.fixture
def boards(db: Database, clock: Clock) -> Clock:
    """The programme with leaderboards applied, on the pinned clock."""
    apply(db, LEADERBOARD_PROGRAM)
    return clock


Enrol = Callable[..., dict[str, Any]]


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], boards: Clock) -> Enrol:
    """Enrol a member over the API; its JSON (``id``, ``card_number`` …)."""
    n = iter(range(10_000))

    def make(**fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"phone": f"+7916555{next(n):04d}", **fields}
        r = client.post("/api/v1/members", json=body, headers=admin)
        assert r.status_code == 201, r.text
        got: dict[str, Any] = r.json()
        return got

    return make


def receipt(
    external_id: str, card: str, *amounts: str, at: str = AT, store: str = "msk-01"
) -> dict[str, Any]:
    """A receipt of one line per amount (quantity 1)."""
    return {
        "external_id": external_id,
        "store": store,
        "channel": "pos",
        "occurred_at": at,
        "member": {"card": card},
        "lines": [
            {"sku": f"SKU-{i + 1}", "quantity": "1", "unit_price": a} for i, a in enumerate(amounts)
        ],
    }


Buy = Callable[..., dict[str, Any]]


@pytest.fixture
def buy(client: TestClient, admin: dict[str, str], boards: Clock) -> Buy:
    """Confirm a receipt (``receipt``'s arguments); the purchase's JSON."""

    def make(external_id: str, card: str, *amounts: str, **kw: Any) -> dict[str, Any]:
        r = client.post(
            "/api/v1/purchases", json=receipt(external_id, card, *amounts, **kw), headers=admin
        )
        assert r.status_code == 201, r.text
        got: dict[str, Any] = r.json()
        return got

    return make


Join = Callable[..., None]


@pytest.fixture
def join(client: TestClient, admin: dict[str, str]) -> Join:
    """Opt a member in (``nickname`` or the masked name) or out."""

    def make(member: dict[str, Any], opted_in: bool = True, nickname: str | None = None) -> None:
        r = client.put(
            f"/api/v1/members/{member['id']}/leaderboard",
            json={"opted_in": opted_in, "nickname": nickname},
            headers=admin,
        )
        assert r.status_code == 200, r.text

    return make


def board(client: TestClient, headers: dict[str, str], code: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/v1/leaderboards/{code}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def table(answer: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(i["rank"], i["display_name"], i["value"]) for i in answer["items"]]
