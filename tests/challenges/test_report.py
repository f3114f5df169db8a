"""The figures the console's challenge screens show: joined, took part, completed, the
completion rate and the rewards' cost (revoked rewards cost nothing)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.challenges import report
from kopilka.core.db import Database
from tests.challenges.conftest import CAKE, COFFEE, Enrol, buy
from tests.conftest import Clock


def test_per_challenge_joined_completed_and_cost(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given Anna completing five coffees, Boris with two, and Boris joining the opt-in one
    anna, boris = enrol(), enrol()
    at = "2026-12-08T10:00:00+03:00"
    for k in range(5):
        buy(client, admin, f"A-{k}", anna["card_number"], at, COFFEE)
    for k in range(2):
        buy(client, admin, f"B-{k}", boris["card_number"], at, CAKE, COFFEE)
    r = client.post(f"/api/v1/members/{boris['id']}/challenges/recycle/join", headers=admin)
    assert r.status_code == 200, r.text
    # when the figures are read
    with db.session() as s:
        got = {f.code: f.as_json() for f in report.figures(s)}
    # then
    assert got["five-coffees"] == {
        "code": "five-coffees",
        "name": {"ru": "Пять кофе за неделю", "en": "Five coffees a week"},
        "joined": 2,
        "took_part": 2,
        "completed": 1,
        "completions": 1,
        "completion_rate": "0.5000",
        "rewards": [{"currency": "BONUS", "amount": "100.0000"}],
        "cost": "100.00",
    }
    # seven receipts of 100 or more: Anna reached 3 and 5 (30 + 50), Boris none
    ladder = got["december-visits"]
    assert (ladder["took_part"], ladder["completed"], ladder["cost"]) == (2, 0, "80.00")
    assert (got["recycle"]["joined"], got["recycle"]["took_part"]) == (1, 0)
    assert got["recycle"]["completion_rate"] == "0.0000"
