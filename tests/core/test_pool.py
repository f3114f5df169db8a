"""A pooled PostgreSQL connection that sat idle is pinged before use: one the server
dropped meanwhile is replaced, not handed to a request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from kopilka.core import db as core_db
from kopilka.core.db import Database


@pytest.mark.postgres_only
def test_an_idle_connection_dropped_by_the_server_is_replaced(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the pool's ping is PostgreSQL's")
    # given an engine whose connections count as idle at once, with one pooled connection
    monkeypatch.setattr(core_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = core_db.make_engine(url=db.engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # when the server ends that connection while it sits in the pool
        with db.engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
        # then the next request gets a new, working connection
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_only_a_connection_idle_for_a_while_is_pinged(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the pool's ping is PostgreSQL's")
    # given an engine with the default idle time and one pooled connection whose pings
    # (run on the driver's connection, not through SQLAlchemy's cursors) are counted
    assert core_db.PING_AFTER_IDLE_SECONDS == 5.0
    engine = core_db.make_engine(url=db.engine.url.render_as_string(hide_password=False))
    try:
        fairy = engine.raw_connection()
        driver = fairy.driver_connection
        assert driver is not None
        pings: list[str] = []
        execute = driver.execute

        def counting(query: Any, *args: Any, **kwargs: Any) -> Any:
            pings.append(str(query))
            return execute(query, *args, **kwargs)

        driver.execute = counting  # type: ignore[method-assign]
        record = fairy._connection_record
        assert record is not None
        fairy.close()
        # when it is taken again at once: no ping
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == []
        # when it is taken after sitting idle for ten seconds: one ping
        record.info["kopilka.idle_since"] -= 10
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == ["SELECT 1"]
    finally:
        engine.dispose()
