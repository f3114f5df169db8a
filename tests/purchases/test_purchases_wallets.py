"""A member's wallets are made when value first moves into them; their receipts are
serialised on the wallet of the programme's first currency (``ledger.lock_member``)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.ledger.models import Account
from kopilka.ledger.verify import verify
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
COFFEE = {"sku": "CAPPUCCINO", "name": "Cappuccino", "category": "cafe", "unit_price": "180.00"}


@pytest.fixture
def demo(db: Database) -> Database:
    apply_demo_program(db, control_group=False)  # a held-out member earns nothing
    return db


def _receipt(external_id: str, card: str, *lines: dict[str, Any], **extra: Any) -> PurchaseIn:
    return PurchaseIn.model_validate(
        {
            "external_id": external_id,
            "store": "msk-01",
            "occurred_at": "2026-11-23T12:00:00+03:00",  # a Monday
            "member": {"card": card},
            "lines": list(lines),
            **extra,
        }
    )


def _wallets(db: Database, member_id: str) -> dict[str, D]:
    with db.session() as s:
        rows = s.execute(
            select(Account.currency, Account.balance).where(
                Account.member_id == uuid.UUID(member_id)
            )
        ).all()
    return dict(rows)


def test_wallets_are_made_when_value_moves_into_them(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # given a new member with no wallet at all
    m = client.post("/api/v1/members", json={"phone": "+79165550001"}, headers=admin).json()
    assert _wallets(demo, m["id"]) == {}
    # when they buy milk (BONUS only: the demo's stickers are for cafe drinks)
    with demo.session() as s:
        status, _ = confirmation.confirm(s, _receipt("W-1", m["card_number"], MILK), TILL)
        s.commit()
    # then they hold a BONUS wallet (the welcome gift and 5 % of 179.80) and no empty
    # STICKER one
    assert status == 201
    assert _wallets(demo, m["id"]) == {"BONUS": D("108.99")}
    # when they buy two cappuccinos: the sticker wallet is made with its first stickers
    with demo.session() as s:
        confirmation.confirm(
            s, _receipt("W-2", m["card_number"], {**COFFEE, "quantity": "2"}), TILL
        )
        s.commit()
    assert _wallets(demo, m["id"]) == {"BONUS": D("126.99"), "STICKER": D("2")}
    with demo.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_redeeming_without_a_wallet_is_insufficient_and_makes_none(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # given a new member with no wallet
    m = client.post("/api/v1/members", json={"phone": "+79165550002"}, headers=admin).json()
    body = _receipt("W-3", m["card_number"], MILK, redeem={"currency": "BONUS", "amount": "10"})
    # when the till asks to pay 10.00 with points
    with demo.session() as s, pytest.raises(Problem) as err:
        confirmation.confirm(s, body, TILL)
    # then it is refused, and nothing was made
    assert err.value.status == 422
    assert err.value.code == "insufficient_balance"
    assert _wallets(demo, m["id"]) == {}


@pytest.mark.postgres_only
def test_racing_first_receipts_of_a_new_member_respect_the_weekly_cap(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    if demo.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    # given a new member with no wallet, and eight tills each selling them three
    # cappuccinos at once (the demo caps stickers at 10 a member a week)
    m = client.post("/api/v1/members", json={"phone": "+79165550003"}, headers=admin).json()
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def buy(i: int) -> None:
        body = _receipt(f"RACE-{i}", m["card_number"], {**COFFEE, "quantity": "3"})
        barrier.wait()
        try:
            with demo.session() as s:
                confirmation.confirm(s, body, TILL)
                s.commit()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then every receipt is recorded, the cap holds exactly, one receipt had the welcome
    # gift, and the ledger balances
    assert errors == []
    # 5 % of 540.00 on each receipt: 27.00
    assert _wallets(demo, m["id"]) == {"BONUS": D("100") + 8 * D("27"), "STICKER": D("10")}
    with demo.session() as s:
        assert verify(s, stop_at_first=False) == []
