"""A small known set for the console's challenge screens, made over the API on the pinned
clock (Saturday 2026-12-05 15:00 in Moscow, ISO week 2026-W49; the last full week is
W48, Monday 2026-11-23 to Sunday 2026-11-29):

* the programme has ``five-coffees``: three receipts with a coffee line a week, 100 BONUS
  (a point worth 0.50 roubles) and the badge ``coffee-lover``;
* in W48 Anna buys coffee on Monday, Wednesday and Sunday at 23:59 (three: completed);
  Boris on Tuesday and Thursday, and again on Monday 2026-11-30 at 00:01 (W49, outside);
  Olga three times, but returns the coffee of one receipt in full (two left); Ivan buys
  bread only (he bought, but nothing counts).

Simulated over W48, the challenge gives: 9 receipts of 4 members, all in the audience;
Anna, Boris and Olga progressed; Anna completed (1 of 3: 33.33 %), at 100 BONUS = 50.00
roubles and one badge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM

CHALLENGES = """
challenges:
  - code: five-coffees
    name: {ru: "Три кофе за неделю", en: "Three coffees a week"}
    goal: {count: purchases, target: 3, where: {lines: {categories: [coffee]}}}
    period: {every: week}
    reward: {currency: BONUS, amount: "100", badge: coffee-lover}
badges:
  - {code: coffee-lover, name: {ru: "Кофеман", en: "Coffee lover"}}
"""
PROGRAM = TEST_PROGRAM.replace('value: "1.00"', 'value: "0.50"', 1) + CHALLENGES
assert 'value: "0.50"' in PROGRAM


def apply(db: Database, text: str = PROGRAM) -> None:
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


def enrol(client: TestClient, admin: dict[str, str], phone: str, name: str) -> dict[str, Any]:
    r = client.post("/api/v1/members", json={"phone": phone, "name": name}, headers=admin)
    assert r.status_code == 201, r.text
    got: dict[str, Any] = client.get(f"/api/v1/members/{r.json()['id']}", headers=admin).json()
    return got


def buy(
    client: TestClient,
    admin: dict[str, str],
    ext: str,
    member: dict[str, Any],
    at: str,
    *lines: tuple[str, str, str],
) -> dict[str, Any]:
    """A receipt at ``msk-01`` of ``(sku, category, price)`` lines, quantity 1 each."""
    body = {
        "external_id": ext,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": at,
        "member": {"card": member["card_number"]},
        "lines": [
            {"sku": sku, "category": cat, "quantity": "1", "unit_price": price}
            for sku, cat, price in lines
        ],
    }
    r = client.post("/api/v1/purchases", json=body, headers=admin)
    assert r.status_code == 201, r.text
    got: dict[str, Any] = r.json()
    return got


COFFEE = ("LATTE", "coffee", "200")
BREAD = ("BREAD", "bakery", "80")


@dataclass
class Members:
    anna: dict[str, Any]
    boris: dict[str, Any]
    olga: dict[str, Any]
    ivan: dict[str, Any]


def make(client: TestClient, db: Database, admin: dict[str, str]) -> Members:
    apply(db)
    anna = enrol(client, admin, "+79160000001", "Анна Петрова")
    boris = enrol(client, admin, "+79160000002", "Борис Орлов")
    olga = enrol(client, admin, "+79160000003", "Ольга Смирнова")
    ivan = enrol(client, admin, "+79160000004", "Иван Петров")
    buy(client, admin, "A-1", anna, "2026-11-23T10:00:00+03:00", COFFEE)
    buy(client, admin, "A-2", anna, "2026-11-25T10:00:00+03:00", COFFEE, BREAD)
    buy(client, admin, "A-3", anna, "2026-11-29T23:59:00+03:00", COFFEE)
    buy(client, admin, "B-1", boris, "2026-11-24T10:00:00+03:00", COFFEE)
    buy(client, admin, "B-2", boris, "2026-11-26T10:00:00+03:00", COFFEE)
    buy(client, admin, "B-3", boris, "2026-11-30T00:01:00+03:00", COFFEE)
    buy(client, admin, "O-1", olga, "2026-11-23T12:00:00+03:00", COFFEE)
    buy(client, admin, "O-2", olga, "2026-11-24T12:00:00+03:00", COFFEE)
    returned = buy(client, admin, "O-3", olga, "2026-11-25T12:00:00+03:00", COFFEE, BREAD)
    r = client.post(
        f"/api/v1/purchases/{returned['id']}/returns",
        json={"external_id": "O-3-R", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code in (200, 201), r.text
    buy(client, admin, "I-1", ivan, "2026-11-27T10:00:00+03:00", BREAD)
    return Members(anna, boris, olga, ivan)
