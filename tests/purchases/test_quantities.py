"""Quantities are plain decimals everywhere: the answers, the returns, the events, the app.

Regression (issue 19): a whole quantity of 10 or more came back as ``"1E+1"``, ``"1E+2"``
(``str(quantity.normalize())``), and the member app's receipt showed "2E+1 × RUB450.00".
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi.testclient import TestClient
from sqlalchemy import text

from kopilka.core.db import Database
from tests.memberapp.conftest import MemberFactory, code_file, make_member, sign_in_by_code  # noqa: F401
from tests.purchases.conftest import Enrol, receipt

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/0710_plain_quantities.py"
SENT = ["10", "100", "2.500", "20", "0.125", "1E+1"]
PLAIN = ["10", "100", "2.5", "20", "0.125", "10"]


def _lines(quantities: list[str]) -> list[dict[str, str]]:
    return [
        {"sku": f"SKU-{i}", "name": f"Item {i}", "quantity": q, "unit_price": "10.00"}
        for i, q in enumerate(quantities, start=1)
    ]


def _quantities(figures: dict[str, Any]) -> list[str]:
    return [line["quantity"] for line in figures["lines"]]


def test_quantities_are_answered_as_plain_decimals(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member's receipt with whole quantities of 10 and more, and fractional ones
    member = enrol()
    body = receipt("R-QTY", member["card_number"], lines=_lines(SENT))
    # when it is calculated, confirmed and read back
    calculated = client.post("/api/v1/purchases/calculate", json=body, headers=admin).json()
    confirmed = client.post("/api/v1/purchases", json=body, headers=admin)
    assert confirmed.status_code == 201, confirmed.text
    read = client.get(f"/api/v1/purchases/{confirmed.json()['id']}", headers=admin).json()
    # then every answer gives each quantity as a plain decimal
    assert _quantities(calculated) == PLAIN
    assert _quantities(confirmed.json()) == PLAIN
    assert _quantities(read) == PLAIN


def test_a_return_and_its_event_give_plain_quantities(
    client: TestClient, admin: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given a confirmed receipt of 20 and of 100 units
    member = enrol()
    body = receipt("R-RET", member["card_number"], lines=_lines(["20", "100"]))
    purchase = client.post("/api/v1/purchases", json=body, headers=admin).json()
    # when 10 and 2.50 of them are returned (10 written as a till may send it)
    r = client.post(
        f"/api/v1/purchases/{purchase['id']}/returns",
        json={
            "external_id": "RET-1",
            "lines": [{"line_no": 1, "quantity": "1E+1"}, {"line_no": 2, "quantity": "2.50"}],
        },
        headers=admin,
    )
    # then the return, and the webhook event about it, give plain quantities
    assert r.status_code == 201, r.text
    assert _quantities(r.json()) == ["10", "2.5"]
    with program.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT data FROM outbox_events WHERE type = 'purchase.returned'")
        ).scalar_one()
    data = raw if isinstance(raw, dict) else json.loads(raw)
    assert _quantities(data["return"]) == ["10", "2.5"]


def test_the_member_apps_receipt_shows_plain_quantities(
    client: TestClient,
    code_file: Path,  # noqa: F811
    make_member: MemberFactory,  # noqa: F811
    admin: dict[str, str],
) -> None:
    # given a member signed in to the app and their receipt of 20 and 2.5 units
    member_id = make_member()
    sign_in_by_code(client, code_file)
    body = receipt("R-APP", None, member={"id": str(member_id)}, lines=_lines(["20", "2.500"]))
    purchase = client.post("/api/v1/purchases", json=body, headers=admin).json()
    # when the receipt is opened, in English and in Russian
    english = client.get(f"/app/receipts/{purchase['id']}").text
    russian = client.get(f"/app/receipts/{purchase['id']}", headers={"Accept-Language": "ru"}).text
    # then the quantities are written as people write them
    assert "20 × " in english and "2.5 × " in english
    assert "20 × " in russian and "2,5 × " in russian
    assert "E+" not in english and "E+" not in russian


@pytest.fixture
def migration() -> Any:
    spec = importlib.util.spec_from_file_location("migration_0710", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_rewrites_quantities_stored_in_exponent_notation(
    client: TestClient, admin: dict[str, str], enrol: Enrol, program: Database, migration: Any
) -> None:
    # given a receipt and a return whose stored figures say "1E+1" and "2E+1", as they were
    # written before this fix
    member = enrol()
    body = receipt("R-OLD", member["card_number"], lines=_lines(["20", "3"]))
    purchase = client.post("/api/v1/purchases", json=body, headers=admin).json()
    client.post(
        f"/api/v1/purchases/{purchase['id']}/returns",
        json={"external_id": "RET-OLD", "lines": [{"line_no": 1, "quantity": "10"}]},
        headers=admin,
    )
    with program.engine.begin() as conn:
        for table, old in (("purchases", "2E+1"), ("purchase_returns", "1E+1")):
            [(ident, figures)] = conn.execute(text(f"SELECT id, figures FROM {table}")).all()
            figures = figures if isinstance(figures, dict) else json.loads(figures)
            figures["lines"][0]["quantity"] = old
            conn.execute(
                text(f"UPDATE {table} SET figures = :f WHERE id = :i"),
                {"f": json.dumps(figures), "i": ident},
            )
    assert _quantities(client.get(f"/api/v1/purchases/{purchase['id']}", headers=admin).json()) == [
        "2E+1",
        "3",
    ]
    # when the migration runs
    with program.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        migration.upgrade()
    # then the receipt reads back plain, and so does the return
    read = client.get(f"/api/v1/purchases/{purchase['id']}", headers=admin).json()
    assert _quantities(read) == ["20", "3"]
    with program.engine.connect() as conn:
        stored = conn.execute(text("SELECT figures FROM purchase_returns")).scalar_one()
    stored = stored if isinstance(stored, dict) else json.loads(stored)
    assert _quantities(stored) == ["10"]
