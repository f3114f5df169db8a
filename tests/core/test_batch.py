"""A Batch sends its list parameters in one JSON document that the statement turns into
arrays of their types: every value arrives as sent, in order, NULLs kept."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kopilka.core.batch import Batch
from kopilka.core.db import Database

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_row = st.tuples(
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | _text,
    st.none() | st.uuids(),
    st.none()
    | st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2999, 12, 31)).map(
        lambda d: d.replace(tzinfo=dt.UTC)
    ),
)


def _run(db: Database, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    with db.session() as s:
        s.connection().exec_driver_sql(
            "CREATE TEMP TABLE batch_rows (o bigint, n bigint, t text, u uuid, at timestamptz)"
            " ON COMMIT DROP"
        )
        batch = Batch("g")
        batch.add("g", "SELECT 1 AS one", {})
        batch.add(
            "ins",
            "INSERT INTO batch_rows SELECT x.o, x.n, x.t, x.u, x.at FROM {guard},"
            " unnest(CAST(:b_n AS bigint[]), CAST(:b_t AS text[]), CAST(:b_u AS uuid[]),"
            " CAST(:b_at AS timestamptz[])) WITH ORDINALITY AS x(n, t, u, at, o)"
            " RETURNING 1",
            {
                "b_n": [r[0] for r in rows],
                "b_t": [r[1] for r in rows],
                "b_u": [None if r[2] is None else str(r[2]) for r in rows],
                "b_at": [None if r[3] is None else r[3].isoformat() for r in rows],
            },
        )
        batch.output("written", "(SELECT count(*) FROM ins)")
        out = batch.run(s)
        got = s.connection().exec_driver_sql("SELECT n, t, u, at FROM batch_rows ORDER BY o").all()
        s.rollback()
    assert out.written == len(rows)
    return [tuple(r) for r in got]


@pytest.mark.postgres_only
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, max_size=12))
def test_lists_arrive_as_sent(db: Database, rows: list[tuple[Any, ...]]) -> None:
    if db.dialect != "postgresql":
        pytest.skip("Batch is PostgreSQL's")
    # when the rows are written through the batch's lists, then read back in their order
    # then each value is the one sent, in its place
    assert _run(db, rows) == rows


@pytest.mark.postgres_only
def test_an_empty_list_writes_nothing(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("Batch is PostgreSQL's")
    assert _run(db, []) == []


@pytest.mark.postgres_only
def test_the_document_is_parsed_once(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("Batch is PostgreSQL's")
    # given a statement with four list parameters
    rows = [(1, "a", uuid.UUID(int=1), None)]
    assert _run(db, rows) == rows
    from kopilka.core import batch as module

    (compiled,) = [c for k, c in module._statements.items() if "batch_rows" in k[0]]
    # then the document is cast from its parameter once, for all of them
    assert compiled.sql.count(b"$1") == 1
    assert compiled.lists == ("b_n", "b_t", "b_u", "b_at")
