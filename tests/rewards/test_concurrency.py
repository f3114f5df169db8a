"""Ten members claim the last three coffees at once: exactly three get one, the other
seven keep their stickers (real connections; PostgreSQL's row locks, SQLite's single
writer)."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.rewards.models import RewardClaim, RewardStock
from tests.rewards.conftest import Enrol, stickers_of
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
