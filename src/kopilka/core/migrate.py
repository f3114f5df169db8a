"""Alembic, driven from code: ``kopilka migrate`` and the schema check of ``serve``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_migrations"
    if packaged.is_dir():
        return packaged
    return here.parent.parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


# Each domain may grow its own branch of revisions (all rooted in the foundation); the
# schema is current when every head is applied.


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revision() -> str | None:
    """The heads as one printable string (``a+b`` when there are several)."""
    heads = sorted(head_revisions())
    return "+".join(heads) if heads else None


def current_revisions(conn: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(conn).get_current_heads())


def current_revision(conn: Connection) -> str | None:
    heads = sorted(current_revisions(conn))
    return "+".join(heads) if heads else None


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema up to ``revision`` (every head by default); idempotent."""
    command.upgrade(alembic_config(engine), revision)


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current_revisions(conn) == head_revisions()
