"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import kopilka.models  # noqa: F401 - every table in the metadata
from kopilka.core.db import Base, Database, make_engine
from kopilka.core.migrate import current_revisions, head_revisions, is_current, upgrade


def test_the_migrated_schema_is_the_models_schema(database: Database) -> None:
    # given the test database, migrated from empty by Alembic; when compared to the models
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    # then nothing differs (a model changed without a migration fails here)
    assert diff == []


def test_a_fresh_database_migrated_to_every_head_is_current(tmp_path: Path) -> None:
    # given a new SQLite file, when every migration runs on it
    engine = make_engine(url=f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        upgrade(engine)
        # then the revisions it is at are the heads the code needs (regression: a migration
        # that depended on another branch's revision left that one out of alembic_version,
        # and /health/ready said the schema was behind on every fresh install)
        with engine.connect() as conn:
            assert current_revisions(conn) == head_revisions()
        assert is_current(engine)
    finally:
        engine.dispose()
