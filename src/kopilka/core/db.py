"""Database: engine, sessions, the declarative base and shared column types.

One schema serves SQLite (the embedded default) and PostgreSQL. On SQLite every
transaction starts with ``BEGIN IMMEDIATE`` so writers are serialised up front instead of
failing on a lock upgrade; WAL lets readers go on meanwhile.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    Uuid,
    create_engine,
    event,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from kopilka.core.config import Settings, get_settings
from kopilka.core.ids import uuid7
from kopilka.core.money import from_units, to_units

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Amount(TypeDecorator[Decimal]):
    """An exact decimal stored as a BIGINT of 1/10 000 (see ``kopilka.core.money``)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_units(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_units(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes, stored in UTC on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # Stored as fixed-width ISO text so that comparisons in SQL are chronological.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# A 64-bit id (INTEGER on SQLite, where only that type is the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def member_window(member: Any, at: Any, m: Any, start: Any, end: Any) -> tuple[Any, ...]:
    """``member = m AND at BETWEEN start AND end``, written as a range of the
    ``(member_id, occurred_at)`` index, which no other index can serve. As two plain
    comparisons, a plan prepared while the table was small (a generic plan, kept for the
    connection's life) may read the window of every member through the ``occurred_at``
    index and filter: one member's standing then cost a scan of all the day's receipts."""
    # the binds typed as the columns (in a tuple SQLAlchemy gives them no type of its own)
    low = tuple_(type_coerce(m, member.type), type_coerce(start, at.type))
    high = tuple_(type_coerce(m, member.type), type_coerce(end, at.type))
    return (member == m, tuple_(member, at) >= low, tuple_(member, at) <= high)


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid7)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any, busy_timeout_ms: int) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event below (pysqlite's own
    # implicit BEGIN is deferred and would fail lock upgrades under concurrency).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Deleted and overwritten content is zeroed, not left in free pages: an erased
    # member's identifiers must not stay readable in the file (152-FZ / GDPR erasure).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def make_engine(settings: Settings | None = None, url: str | None = None) -> Engine:
    settings = settings or get_settings()
    url = url or settings.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        timeout = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, record: Any) -> None:
            _sqlite_on_connect(dbapi_conn, record, timeout)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(
        url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


# A pooled connection that sat idle longer than this is pinged before use (a server
# restart or a dropped link is found then, and the pool connects again); one in
# continuous use is not: SQLAlchemy's pool_pre_ping would cost every request a round
# trip and, with psycopg, 0.3 ms of the server's CPU.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["kopilka.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("kopilka.idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or in use a moment ago
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:  # any failure: this connection is gone
            # the documented way to have the pool drop it and connect again
            raise DisconnectionError() from exc


_keys: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def db_key(session: Session) -> str:
    """The session's database as a string, for per-database caches. Rendering (or even
    hashing) a URL costs 50 us, so it is rendered once per engine."""
    engine = session.get_bind().engine
    key = _keys.get(engine)
    if key is None:
        key = _keys[engine] = engine.url.render_as_string(hide_password=True)
    return key


class Database:
    """The engine and a session factory; one per process (see ``get_db``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_db: Database | None = None


def get_db() -> Database:
    global _db
    if _db is None:
        _db = Database(make_engine())
    return _db


def set_db(db: Database | None) -> None:
    global _db
    _db = db


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
