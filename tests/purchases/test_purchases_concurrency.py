"""An offline till replays a day of receipts from several clients at once: each receipt is
recorded once, and the member's balance is what one replay would give."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.ledger import service as ledger
from kopilka.ledger.verify import verify
from kopilka.purchases import confirmation
from kopilka.purchases.models import Purchase
from kopilka.purchases.schemas import PurchaseIn
from tests.purchases.conftest import WORKED_LINES, Enrol


def test_concurrent_replays_record_each_receipt_once(program: Database, enrol: Enrol) -> None:
    clients = 8 if program.dialect == "postgresql" else 4
    m = enrol("1000.00")
    batch = [
        PurchaseIn.model_validate(
            {
                "external_id": f"OFF-{i}",
                "store": "msk-01",
                "lines": WORKED_LINES,
                "occurred_at": f"2026-11-22T{8 + i // 6:02d}:{(i % 6) * 10:02d}:00+03:00",
                "member": {"card": m["card_number"]},
                "redeem": {"currency": "BONUS", "amount": "10.00"} if i % 3 == 0 else None,
            }
        )
        for i in range(24)
    ]
    till = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def replay(offset: int) -> None:
        barrier.wait()
        for k in range(len(batch)):
            body = batch[(k + offset) % len(batch)]  # each client in another order
            try:
                with program.session() as s:
                    status, _ = confirmation.confirm(s, body, till)
                    s.commit()
                with lock:
                    statuses.append(status)
            except (Problem, Exception) as exc:
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=replay, args=(i * 5,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert statuses.count(201) == len(batch)
    assert statuses.count(200) == len(batch) * (clients - 1)
    with program.session() as s:
        assert s.scalar(select(func.count()).select_from(Purchase)) == len(batch)
        b = next(x for x in ledger.balances(s, uuid.UUID(m["id"])) if x.currency == "BONUS")
        # 8 receipts redeem 10.00 (split 2.85 / 7.15); each earns 5 % per line on what
        # was paid: 176.95 → 8.84, 442.85 → 22.14
        one_redeeming = D("8.84") + D("22.14")
        plain = D("8.99") + D("22.50")
        assert b.available == D("1000.00") - 8 * D("10.00") + 8 * one_redeeming + 16 * plain
        assert verify(s, stop_at_first=False) == []


@pytest.mark.postgres_only
def test_two_tills_redeeming_one_member_never_overspend(program: Database, enrol: Enrol) -> None:
    if program.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    m = enrol("100.00")
    till = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")
    n = 20
    barrier = threading.Barrier(n)
    codes: list[str] = []
    lock = threading.Lock()

    def buy(i: int) -> None:
        body = PurchaseIn.model_validate(
            {
                "external_id": f"T-{i}",
                "store": "msk-01",
                "lines": WORKED_LINES,
                "occurred_at": "2026-11-22T10:00:00+03:00",
                "member": {"card": m["card_number"]},
                "redeem": {"currency": "BONUS", "amount": "30.00"},
            }
        )
        barrier.wait()
        with program.session() as s:
            try:
                confirmation.confirm(s, body, till)
                s.commit()
                code = "ok"
            except Problem as exc:
                code = exc.code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # each purchase earns ≥ 29.99, so later ones may afford it again: count by the ledger
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
        b = next(x for x in ledger.balances(s, uuid.UUID(m["id"])) if x.currency == "BONUS")
        assert b.available >= 0
    assert set(codes) <= {"ok", "insufficient_balance"}
    assert len(codes) == n
