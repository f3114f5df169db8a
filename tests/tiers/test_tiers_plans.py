"""A member's qualifying value reads that member's receipts (or entries) only, whatever
plan the server prepared.

Regression: prepared on a new, empty database (a generic plan, kept for the connection's
life), the standing read the window of *every* member through ``ix_purchases_occurred_at``
and filtered by member: during a day of receipts each confirmation scanned all of the
day's receipts before it."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from sqlalchemy import select

from kopilka.core.batch import RawSelect
from kopilka.core.db import Database
from kopilka.tiers import service as tiers


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    ("metric", "index"),
    [
        ("spend", "ix_purchases_member"),
        ("purchases", "ix_purchases_member"),
        ("points", "ix_ledger_entries_member"),
    ],
)
def test_the_generic_plan_reads_one_members_window(db: Database, metric: str, index: str) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    # given the standing's statement (its literals bound as they are), prepared on empty
    # tables with a generic plan
    statement = RawSelect(select(*tiers.standing_columns(metric)), db.engine.dialect)
    values = {
        "member_id": uuid.UUID(int=7),
        "start": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "end": dt.datetime(2026, 12, 31, tzinfo=dt.UTC),
        "currency": "BONUS",
    }
    with db.session() as s:
        raw = s.connection().connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        raw.execute(f"PREPARE standing AS {statement.sql.decode()}")
        cursor = psycopg.ClientCursor(raw)
        placeholders = ", ".join(["%s"] * len(statement.binds))
        cursor.execute(
            f"EXPLAIN EXECUTE standing({placeholders})",
            [values.get(name, literal) for name, _, literal in statement.binds],
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
        raw.execute("DEALLOCATE standing")
        s.rollback()
    # then the window is a range of the member's index, not of every member's receipts
    assert "ix_purchases_occurred_at" not in plan
    assert index in plan
    assert "Seq Scan on purchases" not in plan
    assert "Seq Scan on ledger_entries" not in plan
