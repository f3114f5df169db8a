"""The migration 0702 makes exactly the tables the models describe, on either database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kopilka.core.db import Base, Database
from kopilka.core.migrate import head_revisions

TABLES = {"member_tiers", "tier_changes"}


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return _table_of(diff[0])
    for part in diff[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, str) and part in TABLES:
            return part
        if name in TABLES:
            return str(name)
    return None


def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    # given the test database, migrated to every head (0702 among them)
    assert "0702" in head_revisions()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    # then alembic finds nothing about the tiers' tables to add, drop or change
    ours = [d for d in diffs if _table_of(d) in TABLES]
    assert ours == []
    tables = set(Base.metadata.tables)
    assert tables >= TABLES
