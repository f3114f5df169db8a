"""How many statements a member's receipt costs on PostgreSQL: the speed of a confirmation
is its round trips, so their count is held here (exactly, not by the clock).

Counted: what SQLAlchemy sends and what ``core.batch`` sends on its raw cursor. A warm
process (the programme, the system accounts and the statements cached) confirms a member's
receipt in three: the member and their wallets locked, what the figures depend on, and
every write in one statement; the commit is not a statement.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import event

from kopilka.apikeys.service import Principal
from kopilka.core import batch as core_batch
from kopilka.core.db import Database
from kopilka.ledger import service as ledger
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import create_member
from kopilka.program import service as program_service
from kopilka.purchases import confirmation
from kopilka.purchases.schemas import PurchaseIn
from tests.conftest import apply_demo_program

TILL = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")
MILK = {
    "sku": "MILK-1L",
    "name": "Milk",
    "category": "dairy",
    "quantity": "2",
    "unit_price": "89.90",
}


@pytest.fixture
def cards(db: Database) -> list[str]:
    if db.dialect != "postgresql":
        pytest.skip("a count of PostgreSQL's round trips")
    apply_demo_program(db, control_group=False)
    out = []
    with db.session() as s:
        for i in range(6):
            m = create_member(s, MemberCreate(phone=f"+7915{i:07d}"), "RU")
            s.flush()
            ledger.credit(
                s, key=f"seed:{i}", kind="adjust", member_id=m.id, currency="BONUS",
                amount=D("1000"), actor="test",
                available_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
            out.append(m.card_number)
        s.commit()
    return out


def test_a_members_receipt_is_three_statements(
    db: Database, cards: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    count = {"n": 0}

    def counted(*args: Any) -> None:
        count["n"] += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    raw = core_batch._execute

    def execute(*args: Any) -> Any:
        count["n"] += 1
        return raw(*args)

    monkeypatch.setattr(core_batch, "_execute", execute)
    # the programme stays cached through the test: its refresh (each second) is not the
    # receipt's, and on a busy machine the six receipts can take longer than that
    monkeypatch.setattr(program_service, "CACHE_SECONDS", 3600.0)
    spent = []
    try:
        for k, card in enumerate(cards):
            body: dict[str, Any] = {
                "external_id": f"S-{k}",
                "store": "msk-01",
                "occurred_at": "2026-12-04T10:00:00+03:00",
                "member": {"card": card},
                "lines": [MILK],
            }
            if k % 2:
                body["redeem"] = {"currency": "BONUS", "amount": "10.00"}
            with db.session() as s:
                count["n"] = 0
                status, _ = confirmation.confirm(s, PurchaseIn.model_validate(body), TILL)
                s.commit()
            assert status == 201
            spent.append(count["n"])
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    # the first two of each kind warm the caches (the tiers' setup; a system account made
    # by a transaction is remembered only once another has read it)
    assert spent[4:] == [3, 3]
