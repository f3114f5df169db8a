"""One member, many tills at the same instant: a limit of one per day grants once."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.custom_events import service
from kopilka.custom_events.models import ActivityReward
from kopilka.custom_events.schemas import EventIn
from kopilka.ledger import service as ledger
from kopilka.ledger.verify import verify
from tests.custom_events.conftest import Enrol, UseRules, event

TILL = Principal(kind="api_key", id="till", role="cashier", store="msk-01")


def _race(db: Database, bodies: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    engine = create_engine(db.engine.url, pool_size=len(bodies) + 5, max_overflow=0)
    dbx = Database(engine)
    barrier = threading.Barrier(len(bodies))
    statuses: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(body: dict[str, Any]) -> None:
        with dbx.session() as s:
            s.connection()  # a real connection each, opened before the start line
            barrier.wait()
            try:
                _, answer = service.record_event(s, EventIn.model_validate(body), TILL)
                s.commit()
                with lock:
                    statuses.extend(r["status"] for r in answer["rewards"])
            except Problem as exc:
                s.rollback()
                with lock:
                    errors.append(exc.code)

    threads = [threading.Thread(target=client, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung: deadlock?"
    engine.dispose()
    return statuses, errors


@pytest.mark.postgres_only
def test_concurrent_events_pass_a_daily_limit_once(
    program: Database, use_rules: UseRules, enrol: Enrol
) -> None:
    if program.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    # given one reward per day, and a member
    use_rules(
        [
            {
                "name": "Jar returned",
                "event": "jar_returned",
                "reward": {"points": {"currency": "BONUS", "amount": "10"}},
                "limits": {"per_day": 1},
            }
        ]
    )
    m = enrol()
    # when 20 tills record a returned jar for the member at the same instant
    statuses, errors = _race(program, [event(m["id"], f"J-{i}") for i in range(20)])
    # then exactly one is granted and 19 are limited
    assert errors == []
    assert sorted(statuses) == ["granted"] + ["limited"] * 19
    with program.session() as s:
        b = next(x for x in ledger.balances(s, uuid.UUID(m["id"])) if x.currency == "BONUS")
        assert b.available == Decimal("10.00")
        granted = s.scalar(
            select(func.count())
            .select_from(ActivityReward)
            .where(ActivityReward.status == "granted")
        )
        assert granted == 1
        assert verify(s, stop_at_first=False) == []


@pytest.mark.postgres_only
def test_concurrent_twins_of_one_event_are_recorded_once(
    program: Database, use_rules: UseRules, enrol: Enrol
) -> None:
    if program.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    use_rules(
        [
            {
                "name": "Jar returned",
                "event": "jar_returned",
                "reward": {"points": {"currency": "BONUS", "amount": "10"}},
            }
        ]
    )
    m = enrol()
    # when the same event is sent 10 times at once
    statuses, errors = _race(program, [event(m["id"], "J-SAME") for _ in range(10)])
    # then every sender gets the one answer, and the points are granted once
    assert errors == []
    assert statuses == ["granted"] * 10
    with program.session() as s:
        b = next(x for x in ledger.balances(s, uuid.UUID(m["id"])) if x.currency == "BONUS")
        assert b.available == Decimal("10.00")
