"""Several workers re-evaluating at once change each member once (the row lock)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.tiers import service as tiers
from kopilka.tiers.models import MemberTier, TierChange
from tests.tiers.conftest import Buy, Enrol

T = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def test_concurrent_reevaluations_change_each_member_once(
    tiered: Database, enrol: Enrol, buy: Buy
) -> None:
    # given members to move up (no tier yet) and gold members whose spend left the window
    fresh = [enrol() for _ in range(5)]
    leaving = [enrol() for _ in range(5)]
    for m in leaving:
        buy(m, T, "30000.00")
    at = T + dt.timedelta(days=400)
    workers = 4 if tiered.dialect == "postgresql" else 2
    barrier = threading.Barrier(workers)
    done: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            with tiered.session() as s:
                barrier.wait()
                n = tiers.reevaluate(s, at, batch=3)
                s.commit()
            with lock:
                done.append(n)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)

    # when several workers re-evaluate at the same moment
    threads = [threading.Thread(target=run) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # then between them they changed each member once
    assert errors == []
    assert sum(done) == len(fresh) + len(leaving)
    with tiered.session() as s:
        changes: Any = s.execute(
            select(TierChange.member_id, func.count()).group_by(TierChange.member_id)
        ).all()
        # the leaving members: their upgrade at the receipt, nothing more (grace only)
        assert sorted(n for _, n in changes) == [1] * 10
        graces = s.scalars(
            select(MemberTier.grace_until).where(MemberTier.grace_until.is_not(None))
        )
        assert list(graces) == [at + dt.timedelta(days=30)] * len(leaving)
