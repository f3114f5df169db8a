"""The hot path of a confirmation (PostgreSQL) writes exactly the rows the general path
writes: each receipt is confirmed both ways on the same state (the hot path's transaction
rolled back, then the general path's kept), and every row either writes is compared."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.ledger import service as ledger
from kopilka.ledger.verify import verify
from kopilka.program import service as program_service
from kopilka.purchases import hotpath, service
from kopilka.purchases.schemas import PurchaseIn
from tests.conftest import apply_demo_program

TILL = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")
GOODS = [
    ("MILK-1L", "dairy", "89.90"),
    ("KEFIR", "dairy", "74.35"),
    ("COFFEE-250", "grocery", "450.00"),
    ("APPLES", "fruit", "129.99"),
    ("CHEESE", "dairy", "1234.56"),
    ("CAPPUCCINO", "cafe", "180.00"),  # a rule capped per member and week: rule_usage
    ("BAGUETTE", "bakery", "59.90"),
]


@pytest.fixture
def demo(db: Database) -> Database:
    if db.dialect != "postgresql":
        pytest.skip("the hot path is PostgreSQL's")
    apply_demo_program(db)
    return db


def _state(session: Session, member_id: uuid.UUID, external_id: str) -> dict[str, Any]:
    """Every row a confirmation of ``external_id`` by the member may have written, with
    generated ids and clock times replaced by what they stand for."""

    def rows(sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in session.execute(text(sql), params).all()]

    m = {"m": member_id, "e": external_id}
    pid = session.execute(
        text("SELECT id FROM purchases WHERE store = 'msk-01' AND external_id = :e"), m
    ).scalar()
    p = {"p": pid}
    entries = rows(
        "SELECT id, key, kind, currency, amount, member_id, occurred_at, actor, description "
        "FROM ledger_entries WHERE purchase_id = :p ORDER BY key",
        **p,
    )
    names = {e[0]: e[1].replace(str(pid), "P") for e in entries}
    lots = rows(
        "SELECT l.id, l.account_id, l.entry_id, l.amount, l.remaining, l.available_at, "
        "l.expires_at FROM ledger_lots l JOIN ledger_accounts a ON a.id = l.account_id "
        "WHERE a.member_id = :m ORDER BY l.id",
        **m,
    )
    # accounts by what they are (a wallet made by a rolled-back transaction used an id)
    accounts = {
        r[0]: (r[1], r[2], r[3] is not None)
        for r in rows("SELECT id, kind, currency, member_id FROM ledger_accounts")
    }
    lot_names = {lot[0]: (names.get(lot[2], "before"), lot[5], lot[6]) for lot in lots}
    return {
        "purchase": rows(
            "SELECT store, external_id, channel, member_id, occurred_at, status, request_hash, "
            "program_version, subtotal, discount, total_due, redeem_currency, redeemed, "
            "redeemed_value, hold_expires_at, receipt_number, CAST(figures AS text), "
            "created_by FROM purchases WHERE id = :p",
            **p,
        ),
        "lines": rows(
            "SELECT line_no, sku, name, category, quantity, unit_price, amount, discount, "
            "redeemed, redeemed_value, total_due FROM purchase_lines WHERE purchase_id = :p "
            "ORDER BY line_no",
            **p,
        ),
        "earnings": rows(
            "SELECT line_no, currency, amount FROM purchase_line_earnings "
            "WHERE purchase_id = :p ORDER BY line_no, currency",
            **p,
        ),
        "rules": rows(
            "SELECT rule_key, unit, rule_version, effect, campaign, member_id, period_start, "
            "amount, released FROM purchase_rules WHERE purchase_id = :p ORDER BY rule_key, unit",
            **p,
        ),
        "usage": rows(
            "SELECT rule_key, period_start, unit, amount FROM rule_usage WHERE member_id = :m "
            "ORDER BY rule_key, period_start",
            **m,
        ),
        "budgets": rows("SELECT code, currency, spent FROM campaign_spend ORDER BY code"),
        "entries": [(names[e[0]], *e[2:]) for e in entries],
        "postings": sorted(
            (names[r[0]], accounts[r[1]], r[2], r[3], lot_names.get(r[4]))
            for r in rows(
                "SELECT p.entry_id, p.account_id, p.currency, p.amount, p.lot_id "
                "FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id "
                "WHERE e.purchase_id = :p",
                **p,
            )
        ),
        "lots": [(accounts[lot[1]], lot_names[lot[0]], lot[3], lot[4]) for lot in lots],
        "wallets": rows(
            "SELECT currency, balance, debt FROM ledger_accounts WHERE member_id = :m "
            "ORDER BY currency",
            **m,
        ),
        "tier": rows(
            "SELECT m.tier, t.floor_tier, t.floor_until, t.grace_until, t.evaluated_at "
            "FROM members m LEFT JOIN member_tiers t ON t.member_id = m.id WHERE m.id = :m",
            **m,
        ),
        "tier_changes": rows(
            "SELECT from_tier, to_tier, reason, at, actor, qualifying_value, note "
            "FROM tier_changes WHERE member_id = :m ORDER BY at, created_at",
            **m,
        ),
        "events": [
            (t, d.replace(str(pid), "P"))
            for t, d in rows(
                "SELECT type, CAST(data AS text) FROM outbox_events WHERE member_id = :m "
                "ORDER BY created_at, id",
                **m,
            )
        ],
        "deliveries": rows(
            "SELECT count(*) FROM webhook_deliveries WHERE member_id = :m",
            **m,
        ),
    }


def _answer(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("id", "created_at")}


def _both_ways(db: Database, body: PurchaseIn, member_id: uuid.UUID) -> dict[str, Any]:
    """Confirm ``body`` the hot way (rolled back) and the general way (kept); assert the
    two wrote the same rows and answered the same; the general way's answer."""
    with db.session() as s:
        # directly: a fallback to the general path would fail the test
        program = program_service.current_program(s)
        status, fast = hotpath.confirm(s, body, TILL, program, service._request_hash(body))
        fast_state = _state(s, member_id, body.external_id)
        s.rollback()
        slow_status, slow = service._confirm(s, body, TILL, lock_budgets=False)
        slow_state = _state(s, member_id, body.external_id)
        s.commit()
    assert (status, _answer(fast)) == (slow_status, _answer(slow))
    assert fast_state == slow_state
    return slow


def test_hot_and_general_paths_write_the_same_rows(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # given members of the demo programme (tiers, a budgeted weekend campaign, capped
    # rules, a control group), one with points to spend
    rng = random.Random(20261202)
    members = []
    for i in range(12):
        r = client.post("/api/v1/members", json={"phone": f"+7916777{i:04d}"}, headers=admin)
        assert r.status_code == 201, r.text
        members.append(r.json())
    with demo.session() as s:
        for m in members[:6]:
            ledger.credit(
                s,
                key=f"seed-{m['id']}",
                kind="adjust",
                member_id=uuid.UUID(m["id"]),
                currency="BONUS",
                amount=D("500.00"),
                actor="test",
                never_expires=True,
                pending_days=0,
            )
        s.commit()
    # when receipts of every kind are confirmed both ways: first purchases (a tier
    # upgrade), redemptions (exact and max), weekend and weekday, odd weights and prices
    n = 0
    for round_ in range(3):
        for m in members:
            n += 1
            lines = [
                {
                    "sku": sku,
                    "name": sku,
                    "category": category,
                    "quantity": str(D(rng.randint(1, 3000)) / 1000) if rng.random() < 0.3 else "2",
                    "unit_price": price,
                }
                for sku, category, price in rng.sample(GOODS, rng.randint(1, len(GOODS)))
            ]
            body: dict[str, Any] = {
                "external_id": f"HOT-{n}",
                "store": "msk-01",
                "channel": "pos",
                "occurred_at": f"2026-11-{22 + round_:02d}T1{round_}:00:00+03:00",
                "member": {"card": m["card_number"]} if n % 2 else {"phone": m["phone"]},
                "lines": lines,
            }
            if members.index(m) < 6 and round_ > 0:
                body["redeem"] = {
                    "currency": "BONUS",
                    "amount": "max" if n % 3 == 0 else "10.00",
                }
            _both_ways(demo, PurchaseIn.model_validate(body), uuid.UUID(m["id"]))
    # then the capped rule was drawn on (its usage compared both ways) and the ledger
    # still balances
    with demo.session() as s:
        capped = s.execute(
            text("SELECT count(*) FROM rule_usage WHERE rule_key = 'cafe-stickers'")
        ).scalar()
        assert capped is not None and capped > 0
        assert verify(s, stop_at_first=False) == []


def test_a_replay_answers_the_first_confirmation(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # given a member's receipt confirmed on the hot path, spending all their points
    r = client.post("/api/v1/members", json={"phone": "+79167770999"}, headers=admin)
    m = r.json()
    with demo.session() as s:
        ledger.credit(
            s,
            key="seed",
            kind="adjust",
            member_id=uuid.UUID(m["id"]),
            currency="BONUS",
            amount=D("10.00"),
            actor="test",
            never_expires=True,
            pending_days=0,
        )
        s.commit()
    body = PurchaseIn.model_validate(
        {
            "external_id": "REPLAY-1",
            "store": "msk-01",
            "occurred_at": "2026-11-22T10:00:00+03:00",
            "member": {"card": m["card_number"]},
            "lines": [{"sku": "MILK", "quantity": "1", "unit_price": "100.00"}],
            "redeem": {"currency": "BONUS", "amount": "10.00"},
        }
    )
    assert hotpath.applies(body)
    with demo.session() as s:
        status, first = service.confirm(s, body, TILL)
        s.commit()
    # when the till sends it again (the points are gone now), by either path
    with demo.session() as s:
        again = service.confirm(s, body, TILL)
    with demo.session() as s:
        general = service._confirm(s, body, TILL, lock_budgets=False)
    # then both answer 200 with the first purchase, not 422 insufficient_balance
    assert status == 201
    assert again == (200, first)
    assert general == (200, first)
    # and other content under the same number is a conflict, not a balance error
    other = body.model_copy(update={"lines": [body.lines[0].model_copy(update={"quantity": D(2)})]})
    with demo.session() as s, pytest.raises(Problem) as err:
        service.confirm(s, other, TILL)
    assert err.value.code == "duplicate_external_id"


def test_what_the_hot_path_leaves_to_the_general_one() -> None:
    base: dict[str, Any] = {
        "external_id": "X",
        "store": "msk-01",
        "occurred_at": "2026-11-22T10:00:00+03:00",
        "lines": [{"sku": "MILK", "quantity": "1", "unit_price": "100.00"}],
    }
    member = {"member": {"card": "0000"}}
    assert hotpath.applies(PurchaseIn.model_validate({**base, **member}))
    assert not hotpath.applies(PurchaseIn.model_validate(base))  # no member
    assert not hotpath.applies(PurchaseIn.model_validate({**base, **member, "hold": True}))
    assert not hotpath.applies(PurchaseIn.model_validate({**base, **member, "coupons": ["A1"]}))
    assert not hotpath.applies(PurchaseIn.model_validate({**base, "member": {"qr": "k1.abc"}}))


def test_a_member_in_debt_is_planned_the_same_both_ways(
    demo: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # given a member owing 100 BONUS (100 earned, spent, then the earning reversed) and
    # another owing 15 (40 the same way, then a gift of 25 that repaid part of it); a debt
    # leaves no lot open (earnings repay it at once)
    owing = []
    for i, (gift, after) in enumerate([("100", None), ("40", "25")]):
        r = client.post("/api/v1/members", json={"phone": f"+791677708{i:02d}"}, headers=admin)
        m = r.json()
        mid = uuid.UUID(m["id"])
        with demo.session() as s:
            first = ledger.credit(
                s, key=f"gift-{i}", kind="adjust", member_id=mid, currency="BONUS",
                amount=D(gift), actor="test", never_expires=True, pending_days=0,
            )  # fmt: skip
            ledger.debit(  # all they have (the welcome gift too)
                s, key=f"spend-{i}", kind="adjust", member_id=mid, currency="BONUS",
                amount=ledger.redeemable(s, mid, "BONUS"), actor="test",
            )  # fmt: skip
            ledger.reverse(s, first.id, key=f"undo-{i}", actor="test")
            if after is not None:
                ledger.credit(
                    s, key=f"again-{i}", kind="adjust", member_id=mid, currency="BONUS",
                    amount=D(after), actor="test", never_expires=True, pending_days=0,
                )  # fmt: skip
            s.commit()
        with demo.session() as s:
            debt = s.scalar(
                text("SELECT debt FROM ledger_accounts WHERE member_id = :m"), {"m": mid}
            )
        assert debt == (100 if after is None else 15) * 10_000  # Amount's units
        owing.append(m)
    # when each buys (the earning repays the debt first)
    for n, m in enumerate(owing):
        body: dict[str, Any] = {
            "external_id": f"DEBT-{n}",
            "store": "msk-01",
            # BONUS is pending 14 days: earned on 20 November, the new lot is open now
            # and repays the debt at once
            "occurred_at": "2026-11-20T10:00:00+03:00",
            "member": {"card": m["card_number"]},
            "lines": [{"sku": "CHEESE", "category": "dairy", "quantity": "1",
                       "unit_price": "1234.56"}],
        }  # fmt: skip
        _both_ways(demo, PurchaseIn.model_validate(body), uuid.UUID(m["id"]))
    # then both debts were repaid from the new lots, and the ledger balances
    with demo.session() as s:
        debts = s.execute(
            text("SELECT debt FROM ledger_accounts WHERE member_id IN (:a, :b)"),
            {"a": uuid.UUID(owing[0]["id"]), "b": uuid.UUID(owing[1]["id"])},
        ).scalars()
        assert sorted(debts) == [0, 0]
        assert verify(s, stop_at_first=False) == []
