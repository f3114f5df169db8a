"""Campaign budgets and per-member caps hold under concurrency (real connections racing on
PostgreSQL; on SQLite writers are serialised and the same test runs with fewer threads)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.core.principal import Principal
from kopilka.ledger.verify import verify
from kopilka.program import service as program_service
from kopilka.purchases import confirmation
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules.models import CampaignSpend, PurchaseRule
from tests.conftest import TEST_PROGRAM
from tests.purchases.conftest import WORKED_LINES, Enrol

TILL = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")


def _apply(db: Database, rules: list[dict[str, Any]], campaigns: list[dict[str, Any]]) -> None:
    doc = yaml.safe_load(TEST_PROGRAM)
    doc.update({"rules": rules, "campaigns": campaigns})
    with db.session() as s:
        program_service.apply_program(s, program_service.validate_program(doc), actor="test")
        s.commit()
    program_service.invalidate_cache()


def _race(db: Database, bodies: list[PurchaseIn]) -> list[str]:
    barrier = threading.Barrier(len(bodies))
    out: list[str] = []
    lock = threading.Lock()

    def buy(body: PurchaseIn) -> None:
        barrier.wait()
        try:
            with db.session() as s:
                confirmation.confirm(s, body, TILL)
                s.commit()
            code = "ok"
        except Exception as exc:
            code = repr(exc)
        with lock:
            out.append(code)

    threads = [threading.Thread(target=buy, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return out


def _body(i: int, card: str, lines: list[dict[str, str]] = WORKED_LINES) -> PurchaseIn:
    return PurchaseIn.model_validate(
        {
            "external_id": f"RACE-{i}",
            "store": "msk-01",
            "lines": lines,
            "occurred_at": "2026-11-22T10:00:00+03:00",
            "member": {"card": card},
        }
    )


def test_a_campaign_budget_is_never_overspent_by_concurrent_tills(
    program: Database, enrol: Enrol
) -> None:
    # given a campaign of 50 BONUS doubling dairy points (8.99 extra per worked receipt)
    _apply(
        program,
        [
            {"name": "Base", "earn": {"currency": "BONUS", "percent": "5"}},
            {
                "name": "Dairy x2",
                "campaign": "promo",
                "when": {"lines": {"categories": ["dairy"]}},
                "multiply": {"factor": "2"},
            },
        ],
        [{"code": "promo", "name": "Promo", "budget": {"currency": "BONUS", "amount": "50"}}],
    )
    n = 16 if program.dialect == "postgresql" else 4
    members = [enrol() for _ in range(n)]
    # when n tills confirm receipts of n members at the same instant
    codes = _race(program, [_body(i, m["card_number"]) for i, m in enumerate(members)])
    # then all succeed, and the campaign gave exactly its budget (or all it was asked for)
    assert codes == ["ok"] * n
    with program.session() as s:
        given = s.scalar(
            select(func.sum(PurchaseRule.amount)).where(PurchaseRule.campaign == "promo")
        )
        spent = s.scalar(select(CampaignSpend.spent).where(CampaignSpend.code == "promo"))
        assert given == spent == min(Decimal("50.00"), Decimal("8.99") * n)
        assert verify(s, stop_at_first=False) == []


def test_a_per_member_cap_holds_when_one_member_buys_at_many_tills(
    program: Database, enrol: Enrol
) -> None:
    # given at most 2 stamps a month for coffee
    _apply(
        program,
        [
            {
                "name": "Stamps",
                "when": {"lines": {"skus": ["COFFEE-250"]}},
                "earn": {"currency": "STAMP", "amount": "1", "per": "unit"},
                "caps": {"per_member": {"amount": "2", "period": "month"}},
            }
        ],
        [],
    )
    n = 12 if program.dialect == "postgresql" else 4
    m = enrol()
    codes = _race(program, [_body(i, m["card_number"]) for i in range(n)])
    assert codes == ["ok"] * n
    with program.session() as s:
        given = s.scalar(
            select(func.sum(PurchaseRule.amount)).where(PurchaseRule.rule_key == "stamps")
        )
        assert given == Decimal(2)
        assert verify(s, stop_at_first=False) == []
