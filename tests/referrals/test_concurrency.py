"""Twenty first receipts of one friend at once, from several tills, reward the referrer once:
on real connections (PostgreSQL's row locks; SQLite serialises its writers, where the same
test holds trivially)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.referrals.models import ReferralReward
from tests.conftest import KeyFactory
from tests.referrals.conftest import Enrol, receipt
from tests.referrals.test_lifecycle import balance, friends, ledger_holds

TILLS = 20


def test_twenty_first_receipts_at_once_reward_the_referrer_once(
    client: TestClient, db: Database, admin: dict[str, str], auth: KeyFactory, enrol: Enrol
) -> None:
    # given Anna, her friend Olga, and twenty tills of two stores
    anna = enrol()
    olga = enrol(code=anna["referral_code"])
    tills = [
        (auth("cashier", store=store), store)
        for store in ("msk-01", "msk-02")
        for _ in range(TILLS // 2)
    ]
    barrier = threading.Barrier(TILLS)
    answers: list[int] = []
    lock = threading.Lock()

    def buy(i: int, h: dict[str, str], store: str) -> None:
        body: dict[str, Any] = receipt(f"T-{i}", olga["card_number"], "1500", store=store)
        barrier.wait()
        r = client.post("/api/v1/purchases", json=body, headers=h)
        with lock:
            answers.append(r.status_code)

    # when Olga's twenty receipts are confirmed at the same moment
    threads = [threading.Thread(target=buy, args=(i, h, s)) for i, (h, s) in enumerate(tills)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every receipt went through, and the referral qualified once
    assert answers == [201] * TILLS
    [ref] = friends(client, admin, anna["id"])
    assert ref["status"] == "qualified"
    assert balance(client, admin, anna["id"]) == ("0.00", "300.00")
    with db.session() as s:
        rewards = s.scalar(select(func.count()).select_from(ReferralReward))
        qualified = s.scalar(select(func.count()).where(OutboxEvent.type == "referral.qualified"))
    assert (rewards, qualified) == (2, 1)
    ledger_holds(db)
