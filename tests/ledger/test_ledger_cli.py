"""``kopilka ledger verify`` and ``kopilka ledger expire`` as an operator runs them."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

from kopilka.core.db import Database, make_engine
from kopilka.ledger import service as ledger
from kopilka.members.models import Member
from tests.conftest import TEST_PROGRAM
from tests.test_cli import kopilka


def test_verify_passes_then_names_the_breach(tmp_path: Path) -> None:
    # given a database with some ledger history
    (tmp_path / "p.yaml").write_text(TEST_PROGRAM, encoding="utf-8")
    assert kopilka(tmp_path, "program", "apply", str(tmp_path / "p.yaml")).returncode == 0
    db = Database(make_engine(url=f"sqlite:///{tmp_path / 'cli.db'}"))
    with db.session() as s:
        m = Member(card_number="7700000000017", referral_code="ABCDEFGH")
        s.add(m)
        s.flush()
        ledger.credit(
            s,
            key="e",
            kind="earn",
            member_id=m.id,
            currency="BONUS",
            amount=D("10"),
            actor="t",
            pending_days=0,
        )
        ledger.debit(
            s, key="r", kind="redeem", member_id=m.id, currency="BONUS", amount=D("4"), actor="t"
        )
        s.commit()
    db.dispose()
    ok = kopilka(tmp_path, "ledger", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "ledger OK" in ok.stdout
    assert kopilka(tmp_path, "ledger", "expire").stdout.strip() == "0 expiry entries written"
    # when a cached balance is tampered with
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        conn.execute("UPDATE ledger_lots SET remaining = remaining - 10000")
    # then verify fails and names the check
    bad = kopilka(tmp_path, "ledger", "verify")
    assert bad.returncode == 1
    assert "BREACH lot_remaining_cache" in bad.stderr
