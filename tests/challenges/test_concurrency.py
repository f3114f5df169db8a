"""Twenty receipts of one member at once, from twenty tills, advance a challenge by exactly
twenty and complete it once: on real connections (PostgreSQL's row locks; SQLite
serialises its writers, where the same test holds trivially)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.challenges.models import ChallengeContribution, ChallengeReward
from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from tests.challenges.conftest import COFFEE, Enrol, apply, balance, ledger_holds, mine, receipt
from tests.conftest import TEST_PROGRAM, Clock, KeyFactory

TILLS = 20
PROGRAM = (
    TEST_PROGRAM
    + """
challenges:
  - code: twenty-coffees
    name: {ru: "Двадцать кофе", en: "Twenty coffees"}
    goal: {count: purchases, target: 20, where: {lines: {categories: [coffee]}}}
    period: {every: month}
    reward: {currency: BONUS, amount: "500"}
"""
)


def test_twenty_receipts_at_once_advance_by_twenty_and_complete_once(
    client: TestClient,
    db: Database,
    admin: dict[str, str],
    auth: KeyFactory,
    enrol: Enrol,
    challenges: Clock,
) -> None:
    # given a challenge of twenty coffees a month, a member and twenty tills
    apply(db, PROGRAM)
    anna = enrol()
    tills = [
        (auth("cashier", store=store), store)
        for store in ("msk-01", "msk-02")
        for _ in range(TILLS // 2)
    ]
    barrier = threading.Barrier(TILLS)
    answers: list[int] = []
    lock = threading.Lock()

    def buy(i: int, h: dict[str, str], store: str) -> None:
        body: dict[str, Any] = receipt(
            f"T-{i}", anna["card_number"], "2026-12-08T11:00:00+03:00", COFFEE, store=store
        )
        barrier.wait()
        r = client.post("/api/v1/purchases", json=body, headers=h)
        with lock:
            answers.append(r.status_code)

    # when her twenty receipts are confirmed at the same moment
    threads = [threading.Thread(target=buy, args=(i, h, s)) for i, (h, s) in enumerate(tills)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every receipt went through, the progress is exactly twenty, completed once
    assert answers == [201] * TILLS
    item = mine(client, admin, anna["id"])["twenty-coffees"]
    assert (item["status"], item["progress"]) == ("completed", {"value": "20", "target": "20"})
    with db.session() as s:
        counted = s.scalar(select(func.count()).select_from(ChallengeContribution))
        rewards = s.scalar(select(func.count()).select_from(ChallengeReward))
        completed = s.scalar(select(func.count()).where(OutboxEvent.type == "challenge.completed"))
        progressed = s.scalar(
            select(func.count()).where(OutboxEvent.type == "challenge.progressed")
        )
    assert (counted, rewards, completed, progressed) == (20, 1, 1, 20)
    # 5 % of 20 × 200 and the reward, once
    assert balance(client, admin, anna["id"]) == ("700.00", "0.00")
    ledger_holds(db)


def test_a_replayed_receipt_never_counts_twice(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    anna = enrol()
    body = receipt("R-1", anna["card_number"], "2026-12-08T11:00:00+03:00", COFFEE)
    for expected in (201, 200):
        r = client.post("/api/v1/purchases", json=body, headers=admin)
        assert r.status_code == expected, r.text
    assert mine(client, admin, anna["id"])["five-coffees"]["progress"]["value"] == "1"
