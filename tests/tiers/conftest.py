"""Helpers for tiers tests: a programme with three levels, members and receipts."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM
from tests.memberapp.conftest import code_file  # noqa: F401 - the sign-in codes fixture

TIERS: dict[str, Any] = {
    "metric": "spend",
    "window": {"rolling_days": 365},
    "grace_days": 30,
    "levels": [
        {"code": "silver", "name": "Серебро", "threshold": "0"},
        # benefits that leave the receipts' figures alone: the rules engine applies them,
        # these tests are about reaching the levels
        {
            "code": "gold",
            "name": "Золото",
            "threshold": "30000",
            "benefits": {"earn_multiplier": "1", "discount_percent": "0"},
        },
        {"code": "platinum", "name": "Платина", "threshold": "100000"},
    ],
}


def program_text(**tiers: Any) -> str:
    doc = yaml.safe_load(TEST_PROGRAM)
    doc["tiers"] = {**TIERS, **tiers}
    return yaml.safe_dump(doc, allow_unicode=True)


def apply(db: Database, text: str) -> None:
    with db.session() as s:
        program_service.apply_program(s, program_service.parse_program(text), actor="test")
        s.commit()
    program_service.invalidate_cache()


@pytest.fixture
def tiered(db: Database) -> Database:
    """The test programme with silver (0), gold (30 000) and platinum (100 000) by spend
    over 365 days, 30 days of grace."""
    apply(db, program_text())
    return db


Enrol = Callable[[], dict[str, Any]]
Buy = Callable[..., dict[str, Any]]


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], tiered: Database) -> Enrol:
    n = itertools.count()

    def make() -> dict[str, Any]:
        r = client.post("/api/v1/members", json={"phone": f"+7916777{next(n):04d}"}, headers=admin)
        assert r.status_code == 201, r.text
        m: dict[str, Any] = r.json()
        return m

    return make


@pytest.fixture
def buy(client: TestClient, admin: dict[str, str]) -> Buy:
    """``buy(member, at, "25000.00", "10000.00")``: a receipt of one line per price."""
    n = itertools.count()

    def make(member: dict[str, Any], at: dt.datetime, *prices: str) -> dict[str, Any]:
        body = {
            "external_id": f"T-{next(n)}",
            "member": {"card": member["card_number"]},
            "store": "msk-01",
            "occurred_at": at.isoformat(),
            "lines": [
                {"sku": f"SKU-{i}", "quantity": "1", "unit_price": p}
                for i, p in enumerate(prices, start=1)
            ],
        }
        r = client.post("/api/v1/purchases", json=body, headers=admin)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    return make
