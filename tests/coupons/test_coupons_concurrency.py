"""Tills racing for the same codes, each with its own database connection: a single-use
code is used once, a limit of N is never exceeded, nor a member's limit."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.coupons import redeem
from kopilka.coupons.models import Coupon, CouponMemberUses, CouponUse
from tests.coupons.conftest import NOW, AddCode, MakeMember, MakePool, receipt


def race(db: Database, jobs: list[tuple[str, uuid.UUID | None]]) -> Counter[str]:
    """Each job (code, member) on its own thread and connection, all released at once:
    evaluate, consume, commit — as a purchase confirmation does. Outcomes counted."""
    barrier = threading.Barrier(len(jobs))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def till(code: str, member: uuid.UUID | None) -> None:
        barrier.wait()
        with db.session() as s:
            try:
                out = redeem.evaluate(s, [code], receipt(member=member), member, NOW)
                result = out.results[0].reason or "applied"
                if result == "applied":
                    redeem.consume(s, out, uuid.uuid4(), member, NOW)
                    s.commit()
            except Problem as exc:
                s.rollback()
                result = f"409:{exc.code}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=till, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert sum(outcomes.values()) == len(jobs)
    return outcomes


def tills(db: Database) -> int:
    return 16 if db.dialect == "postgresql" else 6


def _uses(db: Database, code: str) -> tuple[int, int]:
    with db.session() as s:
        counter = s.execute(select(Coupon.uses).where(Coupon.code == code)).scalar_one()
        rows = s.execute(
            select(func.count(CouponUse.id))
            .join(Coupon, Coupon.id == CouponUse.coupon_id)
            .where(Coupon.code == code)
        ).scalar_one()
    return counter, rows


def test_single_use_code_from_many_tills_is_used_once(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    code = add_code(make_pool(uses_per_code=1))
    n = tills(program)
    outcomes = race(program, [(code, None)] * n)
    assert outcomes["applied"] == 1
    assert outcomes["applied"] + outcomes["coupon_used"] + outcomes["409:coupon_used"] == n
    assert _uses(program, code) == (1, 1)


def test_global_limit_is_never_exceeded(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    code = add_code(make_pool(uses_per_code=5), "LIMITED-FIVE")
    n = tills(program) + 4
    outcomes = race(program, [(code, None)] * n)
    assert outcomes["applied"] == 5
    assert outcomes["coupon_limit_reached"] + outcomes["409:coupon_limit_reached"] == n - 5
    assert _uses(program, code) == (5, 5)


def test_member_limit_under_concurrency(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    # given one member at many tills at once, each with another flyer of a pool that
    # allows two per member
    pool = make_pool(uses_per_member=2)
    member = make_member()
    n = tills(program)
    codes = [add_code(pool) for _ in range(n)]
    outcomes = race(program, [(c, member) for c in codes])
    assert outcomes["applied"] == 2
    with program.session() as s:
        assert s.execute(select(func.count(CouponUse.id))).scalar_one() == 2
        assert s.execute(select(func.sum(Coupon.uses))).scalar_one() == 2
        assert (
            s.execute(
                select(CouponMemberUses.uses).where(CouponMemberUses.member_id == member)
            ).scalar_one()
            == 2
        )


@pytest.mark.postgres_only
def test_consume_waits_for_the_row_lock(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    """The conditional UPDATE takes the code's row lock: a second till waits for the first
    to finish, then sees the use taken (no check-then-act window)."""
    if program.dialect != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite has one writer at a time")
    code = add_code(make_pool(uses_per_code=1))
    a = program.sessions()
    seen_a = redeem.evaluate(a, [code], receipt(), None, NOW)
    seen_b: list[redeem.CouponOutcome] = []
    with program.session() as s:
        seen_b.append(redeem.evaluate(s, [code], receipt(), None, NOW))
    redeem.consume(a, seen_a, uuid.uuid4(), None, NOW)  # holds the lock, not committed
    done = threading.Event()
    result: list[str] = []

    def second() -> None:
        with program.session() as s:
            try:
                redeem.consume(s, seen_b[0], uuid.uuid4(), None, NOW)
                s.commit()
                result.append("applied")
            except Problem as exc:
                result.append(exc.code)
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.5)  # blocked behind the first till's lock
    a.commit()
    a.close()
    assert done.wait(30)
    t.join()
    assert result == ["coupon_used"]
    assert _uses(program, code) == (1, 1)
