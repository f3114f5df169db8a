"""Twenty receipts of one member at once, from twenty tills, on real connections: every
score ends exact (PostgreSQL's row locks and the upsert's atomic addition; SQLite
serialises its writers, where the same test holds trivially)."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from tests.conftest import KeyFactory
from tests.leaderboards.conftest import Enrol, Join, board, receipt, table

TILLS = 20


def test_twenty_receipts_of_one_member_at_once_count_exactly(
    client: TestClient, admin: dict[str, str], auth: KeyFactory, enrol: Enrol, join: Join
) -> None:
    # given Anna shown, and twenty tills of two stores
    anna = enrol(name="Анна Кузнецова")
    join(anna)
    tills = [(auth("cashier", store=s), s) for s in ("msk-01", "msk-02") for _ in range(TILLS // 2)]
    barrier = threading.Barrier(TILLS)
    answers: list[int] = []
    lock = threading.Lock()

    def buy(i: int, h: dict[str, str], store: str) -> None:
        body = receipt(f"T-{i}", anna["card_number"], f"{100 + i}.50", store=store)
        barrier.wait()
        r = client.post("/api/v1/purchases", json=body, headers=h)
        with lock:
            answers.append(r.status_code)

    # when her twenty receipts (100.50, 101.50 … 119.50) are confirmed at the same moment
    threads = [threading.Thread(target=buy, args=(i, h, s)) for i, (h, s) in enumerate(tills)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then each counted exactly once: 20 visits, 2200.00 spent, 10 visits per store
    assert answers == [201] * TILLS
    assert table(board(client, admin, "regulars")) == [(1, "Анна К.", "20")]
    assert table(board(client, admin, "spenders")) == [(1, "Анна К.", "2200.00")]
    for store in ("msk-01", "msk-02"):
        assert table(board(client, admin, "store-day", store=store)) == [(1, "Анна К.", "10")]
