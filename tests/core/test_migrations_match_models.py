"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import kopilka.models  # noqa: F401 - every table in the metadata
from kopilka.core.db import Base, Database


def test_the_migrated_schema_is_the_models_schema(database: Database) -> None:
    # given the test database, migrated from empty by Alembic; when compared to the models
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    # then nothing differs (a model changed without a migration fails here)
    assert diff == []
