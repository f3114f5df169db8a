"""Helpers for purchases tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.ledger import service as ledger

WORKED_LINES = [
    {
        "sku": "MILK-1L",
        "name": "Milk 1 l",
        "category": "dairy",
        "quantity": "2",
        "unit_price": "89.90",
    },
    {
        "sku": "COFFEE-250",
        "name": "Coffee 250 g",
        "category": "grocery",
        "quantity": "1",
        "unit_price": "450.00",
    },
]


def receipt(external_id: str, card: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": "2026-11-22T10:00:00+03:00",
        "lines": WORKED_LINES,
    }
    if card is not None:
        body["member"] = {"card": card}
    body.update(extra)
    return body


Enrol = Callable[..., dict[str, Any]]


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], program: Database) -> Enrol:
    """A member holding ``balance`` BONUS, available now."""
    n = iter(range(1000))

    def make(balance: str = "0") -> dict[str, Any]:
        r = client.post("/api/v1/members", json={"phone": f"+7916555{next(n):04d}"}, headers=admin)
        m: dict[str, Any] = r.json()
        if Decimal(balance) > 0:
            import uuid

            with program.session() as s:
                ledger.credit(
                    s,
                    key=f"seed-{m['id']}",
                    kind="adjust",
                    member_id=uuid.UUID(m["id"]),
                    currency="BONUS",
                    amount=Decimal(balance),
                    actor="test",
                    available_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    never_expires=True,
                )
                s.commit()
        return m

    return make


def balance(client: TestClient, h: dict[str, str], member_id: str) -> str:
    r = client.get(f"/api/v1/members/{member_id}/balances", headers=h)
    return str(r.json()["balances"][0]["available"])
