"""A programme with challenges, on a clock pinned on Tuesday 8 December 2026 (Moscow):
five coffees a week (100 BONUS and a badge, held 14 days), a ladder of visits in December
(3 → 5 → 10), a weekly streak of 3 with one grace week, an opt-in challenge of two
recycling events in 30 days, and two friends who qualify."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.ledger.verify import verify
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM, Clock

CHALLENGES = """
event_types: [clothes_recycled]
event_rules:
  - name: Recycling badge
    event: clothes_recycled
    reward: {badge: eco}
challenges:
  - code: five-coffees
    name: {ru: "Пять кофе за неделю", en: "Five coffees a week"}
    goal: {count: purchases, target: 5, where: {lines: {categories: [coffee]}}}
    period: {every: week}
    reward: {currency: BONUS, amount: "100", badge: coffee-lover, hold_days: 14}
  - code: december-visits
    name: {ru: "Визиты в декабре", en: "December visits"}
    goal: {count: purchases, where: {min_receipt: "100"}}
    period: {from: 2026-11-01, to: 2026-12-31}
    steps:
      - {target: 3, reward: {currency: BONUS, amount: "30"}}
      - {target: 5, reward: {currency: BONUS, amount: "50"}}
      - {target: 10, reward: {currency: BONUS, amount: "100", badge: regular}}
  - code: weekly-streak
    name: {ru: "Три недели подряд", en: "Three weeks running"}
    goal: {count: purchases, where: {lines: {skus: [BREAD]}}}
    streak: {every: week, length: 3, grace: 1}
    reward: {currency: STAMP, amount: "5"}
  - code: recycle
    name: {ru: "Сдай одежду дважды", en: "Recycle twice"}
    goal: {count: events, target: 2, where: {event_type: clothes_recycled}}
    period: {days: 30}
    join: opt_in
    reward: {currency: BONUS, amount: "40"}
  - code: two-friends
    name: {ru: "Приведи двоих", en: "Bring two friends"}
    goal: {count: referrals, target: 2}
    reward: {badge: ambassador}
badges:
  - {code: coffee-lover, name: {ru: "Кофеман", en: "Coffee lover"}, image: img/badges/coffee.svg}
  - {code: regular, name: {ru: "Завсегдатай", en: "Regular"}}
  - code: eco
    name: {ru: "Эко", en: "Eco"}
    description: {ru: "Сдал одежду", en: "Recycled clothes"}
  - {code: ambassador, name: {ru: "Посол", en: "Ambassador"}}
referrals:
  referrer_reward: {currency: BONUS, amount: "300"}
  qualifying: {min_paid: "500.00", within_days: 30}
  hold_days: 14
"""
CHALLENGE_PROGRAM = TEST_PROGRAM + CHALLENGES

# Tuesday 8 December 2026, 12:00 in Moscow.
TUESDAY = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock_start() -> dt.datetime:
    return TUESDAY


def apply(db: Database, text: str) -> None:
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


@pytest.fixture
def challenges(db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The programme applied, on the pinned clock (the receipts' plausibility window too:
    the tests' receipts are dated on the pinned Tuesday, whatever the day they run)."""
    monkeypatch.setattr(program_service, "now", clock)
    apply(db, CHALLENGE_PROGRAM)
    return clock


Enrol = Callable[..., dict[str, Any]]


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], challenges: Clock) -> Enrol:
    n = iter(range(10_000))

    def make(**fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"phone": f"+7916555{next(n):04d}", **fields}
        r = client.post("/api/v1/members", json=body, headers=admin)
        assert r.status_code == 201, r.text
        got: dict[str, Any] = client.get(f"/api/v1/members/{r.json()['id']}", headers=admin).json()
        return got

    return make


def receipt(
    ext: str, card: str, at: str, *lines: tuple[str, str | None, str], store: str = "msk-01"
) -> dict[str, Any]:
    """A receipt of ``(sku, category, unit_price)`` lines, quantity 1 each."""
    return {
        "external_id": ext,
        "store": store,
        "channel": "pos",
        "occurred_at": at,
        "member": {"card": card},
        "lines": [
            {"sku": sku, "category": cat, "quantity": "1", "unit_price": price}
            for sku, cat, price in lines
        ],
    }


COFFEE = ("LATTE", "coffee", "200")
CAKE = ("CAKE", "bakery", "150")
BREAD = ("BREAD", "bakery", "60")


def buy(
    client: TestClient,
    h: dict[str, str],
    ext: str,
    card: str,
    at: str,
    *lines: tuple[str, str | None, str],
) -> str:
    r = client.post("/api/v1/purchases", json=receipt(ext, card, at, *lines), headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def mine(client: TestClient, h: dict[str, str], member: str) -> dict[str, dict[str, Any]]:
    """The member's current challenges by code."""
    r = client.get(f"/api/v1/members/{member}/challenges", headers=h)
    assert r.status_code == 200, r.text
    out: dict[str, dict[str, Any]] = {}
    for item in r.json()["items"]:
        out.setdefault(item["code"], item)
    return out


def all_items(client: TestClient, h: dict[str, str], member: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/members/{member}/challenges", headers=h)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def badges_of(client: TestClient, h: dict[str, str], member: str) -> list[str]:
    r = client.get(f"/api/v1/members/{member}/badges", headers=h)
    assert r.status_code == 200, r.text
    return [b["code"] for b in r.json()["items"]]


def balance(
    client: TestClient, h: dict[str, str], member: str, currency: str = "BONUS"
) -> tuple[str, str]:
    """(available, pending)."""
    b = client.get(f"/api/v1/members/{member}/balances", headers=h).json()["balances"]
    row = next((x for x in b if x["currency"] == currency), None)
    return (str(row["available"]), str(row["pending"])) if row else ("0", "0")


def events(db: Database, prefix: str = "challenge.") -> list[str]:
    with db.session() as s:
        return [
            t
            for t in s.scalars(select(OutboxEvent.type).order_by(OutboxEvent.created_at))
            if t.startswith(prefix)
        ]


def ledger_holds(db: Database) -> None:
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []
