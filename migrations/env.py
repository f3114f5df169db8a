"""Alembic environment: one set of migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection, Engine

import kopilka.models  # noqa: F401 - registers every table
from kopilka.core.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _sqlite_pragma(connection: Connection, sql: str) -> list[Any]:
    """Run a pragma on the driver connection, outside any transaction SQLAlchemy opens."""
    raw: Any = connection.connection.dbapi_connection
    return list(raw.execute(sql).fetchall())


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine()
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations rebuild tables that others refer to; SQLite wants foreign
                # keys off for that, and the pragma only works outside a transaction.
                _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
            try:
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                with context.begin_transaction():
                    context.run_migrations()
                if connection.in_transaction():
                    connection.commit()
                if sqlite and _sqlite_pragma(connection, "PRAGMA foreign_key_check"):
                    raise RuntimeError("a migration left rows whose foreign keys point nowhere")
            finally:
                if sqlite:
                    _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `kopilka migrate`")
run_migrations_online()
