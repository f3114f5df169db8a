"""The demo data: members with history recorded through the real services."""

from __future__ import annotations

from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.demo.seed import demo_program_text, seed_history, seed_members
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, parse_program
from kopilka.purchases.models import Purchase
from kopilka.rules.models import PurchaseRule


def test_demo_seed_makes_a_consistent_history(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    assert seed_members(40) == 40
    receipts = seed_history()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Purchase)) == receipts
        anonymous = s.scalar(
            select(func.count()).select_from(Purchase).where(Purchase.member_id.is_(None))
        )
        assert 0 < anonymous < receipts
        kinds = set(s.scalars(select(Entry.kind).distinct()))
        assert {"earn", "redeem"} <= kinds
        # the demo programme's rules show their effects in the history
        fired = set(s.scalars(select(PurchaseRule.rule_key).distinct()))
        assert {
            "base-earn",
            "bakery-bonus",
            "dairy-weekend-x2",
            "cafe-stickers",
            "welcome-gift",
        } <= fired
        assert verify(s, stop_at_first=False) == []
