"""Ten members claim the last three coffees at once: exactly three get one, the other
seven keep their stickers; five tills sell the last two towels: two are sold (real
connections; PostgreSQL's row locks, SQLite's single writer)."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from kopilka.rewards.models import RewardClaim, RewardStock
from tests.rewards.conftest import TOWEL, Enrol, apply, receipt, stickers_of
from tests.rewards.test_claims import pool

MEMBERS = 10


def test_ten_members_claiming_the_last_three_get_exactly_three(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given three coffees in stock and ten members with 10 stickers each
    pool(client, admin)
    members = [enrol("10") for _ in range(MEMBERS)]
    barrier = threading.Barrier(MEMBERS)
    answers: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()

    def claim(member_id: str) -> None:
        barrier.wait()
        r = client.post(
            f"/api/v1/members/{member_id}/rewards/coffee/claim",
            headers={**admin, "Idempotency-Key": f"claim-{member_id}"},
        )
        with lock:
            answers[member_id] = (r.status_code, r.json().get("code", r.json().get("status")))

    # when they all claim at the same moment
    threads = [threading.Thread(target=claim, args=(m["id"],)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then three claims went through and seven were told the coffee is gone
    got = sorted(answers.values())
    assert got == [(201, "claimed")] * 3 + [(422, "reward_unavailable")] * 7
    # and the winners paid 10 stickers, the others kept theirs
    for m in members:
        expected = "0" if answers[m["id"]][0] == 201 else "10"
        assert stickers_of(client, admin, m["id"]) == expected
    with db.session() as s:
        assert s.scalar(select(RewardStock.taken).where(RewardStock.code == "coffee")) == 3
        assert s.scalar(select(func.count()).select_from(RewardClaim)) == 3


def test_five_tills_selling_the_last_two_towels_sell_two(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given two towels left and five members with 30 stickers each
    apply(db, towels=2)
    members = [enrol("30") for _ in range(5)]
    barrier = threading.Barrier(len(members))
    answers: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()

    def sell(i: int, card: str, member_id: str) -> None:
        barrier.wait()
        r = client.post("/api/v1/purchases", json=receipt(f"T-{i}", card, TOWEL), headers=admin)
        with lock:
            answers[member_id] = (r.status_code, r.json().get("code", r.json().get("status")))

    # when five tills sell a towel at the same moment
    threads = [
        threading.Thread(target=sell, args=(i, m["card_number"], m["id"]))
        for i, m in enumerate(members)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then two are sold; the three others are refused and keep their stickers
    assert sorted(answers.values()) == [(201, "confirmed")] * 2 + [(422, "reward_unavailable")] * 3
    for m in members:
        assert stickers_of(client, admin, m["id"]) == ("0" if answers[m["id"]][0] == 201 else "30")
    with db.session() as s:
        assert s.scalar(select(RewardStock.taken).where(RewardStock.code == "towel-1r")) == 2
        assert verify(s, stop_at_first=False) == []
