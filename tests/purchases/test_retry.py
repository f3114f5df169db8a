"""The one retry of a confirmation (``core.write.retrying``), proven with real connections
on PostgreSQL: another transaction draws the budget, or moves the member's tier, after the
receipt read them and before it writes; the receipt's conditional write does not take, it
is rolled back and confirmed once more, with those rows locked first."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, text

from kopilka.apikeys.service import Principal
from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from kopilka.members.models import Member
from kopilka.program import service as program_service
from kopilka.purchases import confirmation
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules import service as rules_service
from kopilka.rules.models import CampaignSpend, PurchaseRule
from kopilka.tiers import service as tiers_service
from tests.conftest import TEST_PROGRAM, apply_demo_program
from tests.purchases.conftest import WORKED_LINES, Enrol

TILL = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")


@pytest.fixture
def pg(program: Database) -> Database:
    if program.dialect != "postgresql":
        pytest.skip("a race of real connections (SQLite serialises writers)")
    return program


def _attempts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each attempt's ``retry`` (False: the first, True: the retry)."""
    seen: list[bool] = []
    real = confirmation._attempt

    def spy(*args: Any) -> Any:
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(confirmation, "_attempt", spy)
    return seen


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    db: Database,
    sql: str,
    **params: Any,
) -> None:
    """Before ``module.name`` plans its writes the first time, another connection runs
    ``sql`` and commits."""
    real: Callable[..., Any] = getattr(module, name)
    done: list[bool] = []

    def first(*args: Any, **kw: Any) -> Any:
        if not done:
            done.append(True)
            with db.engine.connect() as other:
                other.execute(text(sql), params)
                other.commit()
        return real(*args, **kw)

    monkeypatch.setattr(module, name, first)


def _body(card: str, lines: list[dict[str, str]] = WORKED_LINES) -> PurchaseIn:
    return PurchaseIn.model_validate(
        {
            "external_id": "RETRY-1",
            "store": "msk-01",
            "lines": lines,
            "occurred_at": "2026-11-22T10:00:00+03:00",
            "member": {"card": card},
        }
    )


def test_a_budget_drawn_meanwhile_is_retried_once(
    pg: Database, enrol: Enrol, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a campaign of 50 BONUS doubling dairy points (8.99 extra on the worked receipt)
    doc = yaml.safe_load(TEST_PROGRAM)
    doc["rules"] = [
        {"name": "Base", "earn": {"currency": "BONUS", "percent": "5"}},
        {
            "name": "Dairy x2",
            "campaign": "promo",
            "when": {"lines": {"categories": ["dairy"]}},
            "multiply": {"factor": "2"},
        },
    ]
    doc["campaigns"] = [
        {"code": "promo", "name": "Promo", "budget": {"currency": "BONUS", "amount": "50"}}
    ]
    with pg.session() as s:
        program_service.apply_program(s, program_service.validate_program(doc), actor="test")
        s.commit()
    program_service.invalidate_cache()
    member = enrol()
    attempts = _attempts(monkeypatch)
    # when another till spends 45 of it after this receipt read the budget as untouched
    _meanwhile(
        monkeypatch,
        rules_service,
        "plan_draws",
        pg,
        "INSERT INTO campaign_spend (code, currency, spent, updated_at) "
        "VALUES ('promo', 'BONUS', 450000, now())",
    )
    with pg.session() as s:
        status, _ = confirmation.confirm(s, _body(member["card_number"]), TILL)
        s.commit()
    # then the receipt was confirmed on the second attempt, with what was left: 5
    assert status == 201
    assert attempts == [False, True]  # the first did not take; one retry
    with pg.session() as s:
        given = s.scalar(
            select(func.sum(PurchaseRule.amount)).where(PurchaseRule.campaign == "promo")
        )
        spent = s.scalar(select(CampaignSpend.spent).where(CampaignSpend.code == "promo"))
        assert (given, spent) == (D("5.00"), D("50.00"))
        assert verify(s, stop_at_first=False) == []


def test_a_tier_moved_meanwhile_is_retried_once(
    db: Database, client: Any, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("a race of real connections (SQLite serialises writers)")
    # given the demo programme (gold from 30,000 spent) and a member
    apply_demo_program(db, control_group=False)
    m = client.post("/api/v1/members", json={"phone": "+79165550001"}, headers=admin).json()
    attempts = _attempts(monkeypatch)
    # when a manager sets the member's tier after this receipt read it
    _meanwhile(
        monkeypatch,
        tiers_service,
        "plan_move",
        db,
        "UPDATE members SET tier = 'platinum' WHERE id = :m",
        m=uuid.UUID(m["id"]),
    )
    big = [
        {"sku": "TV", "name": "TV", "category": "tech", "quantity": "1", "unit_price": "31000.00"}
    ]
    with db.session() as s:
        status, _ = confirmation.confirm(s, _body(m["card_number"], big), TILL)
        s.commit()
    # then the first tier write did not take, and the retry decided under the lock
    assert status == 201
    assert attempts == [False, True]
    with db.session() as s:
        tier = s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"])))
        assert tier == "platinum"  # kept: a receipt never lowers a tier
        assert verify(s, stop_at_first=False) == []
