"""The ledger's operations: lots, FIFO, pending, expiry, reversals, debts, transfers."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Entry, Lot
from kopilka.ledger.verify import verify
from tests.ledger.conftest import Clock, MakeMember

TZ = "Europe/Moscow"


def bal(
    db: Database, member: uuid.UUID, as_of: dt.datetime | None = None, cur: str = "BONUS"
) -> ledger.Balance:
    with db.session() as s:
        return next(b for b in ledger.balances(s, member, as_of) if b.currency == cur)


def earn(db: Database, member: uuid.UUID, amount: str, key: str, **kw: object) -> Entry:
    with db.session() as s:
        e = ledger.credit(
            s,
            key=key,
            kind="earn",
            member_id=member,
            currency="BONUS",
            amount=D(amount),
            actor="test",
            tz=TZ,
            **kw,
        )  # type: ignore[arg-type]
        s.commit()
        return e


def spend(db: Database, member: uuid.UUID, amount: str, key: str, **kw: object) -> Entry:
    with db.session() as s:
        e = ledger.debit(
            s,
            key=key,
            kind="redeem",
            member_id=member,
            currency="BONUS",
            amount=D(amount),
            actor="test",
            **kw,
        )  # type: ignore[arg-type]
        s.commit()
        return e


def assert_invariants(db: Database) -> None:
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_credit_then_debit(program: Database, make_member: MakeMember, clock: Clock) -> None:
    m = make_member()
    earn(program, m, "100.00", "e1")
    spend(program, m, "30.50", "r1")
    b = bal(program, m)
    assert (b.available, b.pending) == (D("69.50"), D("0"))
    assert_invariants(program)


def test_debit_more_than_available_is_refused_and_changes_nothing(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    earn(program, m, "10.00", "e1")
    with pytest.raises(Problem) as info:
        spend(program, m, "10.01", "r1")
    assert info.value.code == "insufficient_balance"
    assert info.value.extra == {"available": "10.00"}
    assert bal(program, m).available == D("10.00")
    with program.session() as s:
        assert s.execute(select(Entry).where(Entry.key == "r1")).first() is None


def test_amount_finer_than_precision_is_refused(program: Database, make_member: MakeMember) -> None:
    m = make_member()
    with pytest.raises(Problem) as info:
        earn(program, m, "1.005", "e1")
    assert info.value.errors[0]["field"] == "amount"  # type: ignore[index]


def test_same_key_is_one_movement(program: Database, make_member: MakeMember, clock: Clock) -> None:
    m = make_member()
    first = earn(program, m, "5.00", "k")
    again = earn(program, m, "5.00", "k")
    assert again.id == first.id
    assert bal(program, m).available == D("5.00")
    with pytest.raises(Problem) as info:
        earn(program, m, "6.00", "k")
    assert info.value.code == "idempotency_key_reused"


def test_fifo_by_expiry_never_expiring_last(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    far = clock.at + dt.timedelta(days=300)
    near = clock.at + dt.timedelta(days=10)
    earn(program, m, "10", "never", never_expires=True, available_at=clock.at)
    earn(program, m, "10", "far", expires_at=far, available_at=clock.at)
    earn(program, m, "10", "near", expires_at=near, available_at=clock.at)
    spend(program, m, "15", "r")
    with program.session() as s:
        lots = {lot.expires_at: lot.remaining for lot in s.scalars(select(Lot))}
    assert lots == {near: D("0"), far: D("5"), None: D("10")}
    spend(program, m, "7", "r2")
    with program.session() as s:
        lots = {lot.expires_at: lot.remaining for lot in s.scalars(select(Lot))}
    assert lots == {near: D("0"), far: D("0"), None: D("8")}


def test_pending_matures_by_the_clock_and_as_of_answers(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    start = clock.at
    earn(program, m, "40", "e", pending_days=14)
    b = bal(program, m)
    assert (b.available, b.pending) == (D("0"), D("40"))
    later = bal(program, m, start + dt.timedelta(days=14))
    assert (later.available, later.pending) == (D("40"), D("0"))
    with pytest.raises(Problem):
        spend(program, m, "1", "too-early")
    clock.advance(days=14)
    spend(program, m, "15", "r")
    assert bal(program, m).available == D("25")
    # and a past moment is answered from the postings up to then
    past = bal(program, m, start + dt.timedelta(days=1))
    assert (past.available, past.pending) == (D("0"), D("40"))


def test_expiry_by_clock_and_job_writes_once(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    earn(program, m, "20", "e")  # BONUS expires after 365 days, at local midnight
    b = bal(program, m)
    assert b.expiring_amount == D("20")
    assert b.expiring_at == dt.datetime(2027, 3, 1, 21, 0, tzinfo=dt.UTC)  # 2027-03-02 00:00 MSK
    assert bal(program, m, b.expiring_at).available == D("0")
    assert bal(program, m, b.expiring_at - dt.timedelta(seconds=1)).available == D("20")
    clock.at = b.expiring_at
    assert bal(program, m).available == D("0")  # before any job ran
    with program.session() as s:
        assert ledger.expire_due(s) == 1
        s.commit()
        assert ledger.expire_due(s) == 0
        s.commit()
        kinds = [i.kind for i in ledger.history(s, m)[0]]
    assert kinds == ["expire", "earn"]
    assert_invariants(program)


def test_reversing_a_debit_gives_back_the_same_lots(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    near = clock.at + dt.timedelta(days=5)
    far = clock.at + dt.timedelta(days=50)
    earn(program, m, "10", "near", expires_at=near, available_at=clock.at)
    earn(program, m, "10", "far", expires_at=far, available_at=clock.at)
    r = spend(program, m, "15", "r")
    with program.session() as s:
        ledger.reverse(s, r.id, key="undo-1", actor="t", amount=D("4"))
        s.commit()
        lots = {lot.expires_at: lot.remaining for lot in s.scalars(select(Lot))}
        assert lots == {near: D("0"), far: D("9")}  # the last drawn (far) comes back first
        ledger.reverse(s, r.id, key="undo-2", actor="t")
        s.commit()
        lots = {lot.expires_at: lot.remaining for lot in s.scalars(select(Lot))}
        assert lots == {near: D("10"), far: D("10")}
        with pytest.raises(Problem) as info:
            ledger.reverse(s, r.id, key="undo-3", actor="t")
        assert info.value.code == "reversal_exceeds_entry"
    assert_invariants(program)


def test_reversing_a_spent_credit_leaves_a_debt_that_earnings_repay(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    e = earn(program, m, "50", "e")
    spend(program, m, "45", "r")
    with program.session() as s:
        ledger.reverse(s, e.id, key="rev", actor="t")
        s.commit()
    b = bal(program, m)
    assert b.available == D("-45")  # a debt, shown, never hidden
    with pytest.raises(Problem):
        spend(program, m, "1", "r2")
    earn(program, m, "60", "e2")
    assert bal(program, m).available == D("15")
    spend(program, m, "15", "r3")
    assert bal(program, m).available == D("0")
    assert_invariants(program)


def test_transfer_keeps_expiry_and_limits(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    a, b = make_member(), make_member()
    near = clock.at + dt.timedelta(days=7)
    earn(program, a, "30", "e", expires_at=near, available_at=clock.at)
    with program.session() as s:
        ledger.transfer(
            s, key="t1", from_member=a, to_member=b, currency="BONUS", amount=D("12"), actor="t"
        )
        s.commit()
    assert bal(program, a).available == D("18")
    got = bal(program, b)
    assert (got.available, got.expiring_at) == (D("12"), near)
    with program.session() as s, pytest.raises(Problem) as info:
        ledger.transfer(
            s, key="t2", from_member=a, to_member=b, currency="BONUS", amount=D("19"), actor="t"
        )
    assert info.value.code == "insufficient_balance"
    assert_invariants(program)


def test_entries_and_postings_are_append_only(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    earn(program, m, "10", "e")
    for sql in (
        "UPDATE ledger_entries SET description = 'x'",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_postings SET amount = amount + 1",
        "DELETE FROM ledger_postings",
    ):
        with program.engine.connect() as conn, pytest.raises((DBAPIError, IntegrityError)) as info:
            conn.execute(text(sql))
        assert "append-only" in str(info.value)
    assert bal(program, m).available == D("10")


def test_lot_constraint_backs_non_negative(program: Database, make_member: MakeMember) -> None:
    m = make_member()
    earn(program, m, "10", "e")
    with program.engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("UPDATE ledger_lots SET remaining = -1"))


def test_verify_reports_a_tampered_cache(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    m = make_member()
    earn(program, m, "10", "e")
    with program.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'member'"))
    with program.session() as s:
        found = verify(s)
    assert [b.check for b in found] == ["wallet_balance_cache"]


def test_a_system_account_made_by_a_rolled_back_transaction_is_not_remembered(
    program: Database,
) -> None:
    # regression: racing tills on PostgreSQL — a transaction made the issuance account,
    # the process remembered its id, the transaction rolled back, and the next credits of
    # other tills failed on a foreign key to a row that never existed.
    ledger.clear_caches()
    with program.session() as s:
        s.execute(
            text("DELETE FROM ledger_accounts WHERE member_id IS NULL AND currency = 'STAMP'")
        )
        s.commit()
    # given a transaction that makes STAMP's issuance account, then rolls back
    with program.session() as s:
        phantom = ledger.system_account(s, "STAMP", "issuance")
        assert ledger.system_account(s, "STAMP", "issuance") == phantom  # same tx: same row
        s.rollback()
    # when another transaction asks for it
    with program.session() as s:
        real = ledger.system_account(s, "STAMP", "issuance")
        # then it gets a row that exists
        assert (
            s.execute(text(f"SELECT count(*) FROM ledger_accounts WHERE id = {real}")).scalar() == 1
        )
        s.commit()
    # and once committed, the id is remembered and still right
    with program.session() as s:
        assert ledger.system_account(s, "STAMP", "issuance") == real
