"""Test fixtures: a real database per run (SQLite file or a fresh PostgreSQL database).

``KOPILKA_TEST_DB=sqlite`` (default) or ``KOPILKA_TEST_DB=postgresql``. The PostgreSQL run
creates its own database ``kopilka_test_<random>`` on ``KOPILKA_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), migrates it with Alembic, and drops it at
the end. If PostgreSQL was asked for and cannot be reached, the run fails: it never skips.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("KOPILKA_ENVIRONMENT", "test")
os.environ.setdefault("KOPILKA_LOG_LEVEL", "WARNING")
os.environ.setdefault("KOPILKA_EMBEDDED_WORKER", "false")  # tests drive workers themselves

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

import kopilka.core.db as core_db
import kopilka.models  # noqa: F401
from kopilka.apikeys.service import clear_cache, create_key
from kopilka.audit import guards as audit_guards
from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Base, Database, make_engine, set_db
from kopilka.core.migrate import upgrade
from kopilka.events import service as events_service
from kopilka.ledger import guards
from kopilka.ledger import service as ledger_service
from kopilka.program import service as program_service
from kopilka.wiring import wire

# Hypothesis's deadline is a wall-clock bound per example: on a busy machine it fails
# tests that are right (test_split took 312 ms against its 200 ms). None here; a test
# that is about speed is a benchmark in bench/, not a deadline.
settings.register_profile("kopilka", deadline=None)
settings.load_profile("kopilka")

# The registries the app and the CLI fill (jobs, hooks, the outbox's consumer), filled
# for tests that call services without either.
wire()

BACKEND = os.environ.get("KOPILKA_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "KOPILKA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEMO_PROGRAM = Path(__file__).resolve().parent.parent / "src/kopilka/demo/program.yaml"


def apply_demo_program(db: Database, *, control_group: bool = True) -> None:
    """Apply the demo programme (``control_group=False``: without its control group, in
    which one member in ten is held out and earns nothing)."""
    text = DEMO_PROGRAM.read_text(encoding="utf-8")
    if not control_group:
        assert 'control_group_share: "0.1"' in text
        text = text.replace('control_group_share: "0.1"', 'control_group_share: "0"')
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


TEST_PROGRAM = """
name: Test programme
base_currency: RUB
timezone: Europe/Moscow
default_phone_region: RU
currencies:
  - code: BONUS
    name: Бонусные рубли
    precision: 2
    value: "1.00"
    pending_days: 0
    expires_after_days: 365
    redeem_max_share: "0.5"
    transferable: true
  - code: STAMP
    name: Stamps
    precision: 0
    value: "0"
    redeem_max_share: "0"
stores:
  - {code: msk-01, name: "Тверская, 12"}
  - {code: msk-02, name: "Арбат, 5"}
  - {code: p-store, name: "Partner shop", partner: acme}
transfers: {enabled: true, max_amount: "1000", daily_limit: "3000"}
# The tests' receipts carry fixed dates (2026-11-22 …) and some replay a year of history,
# as an operator loading history would: the window is wide for them the same way.
clock: {max_replay_days: 3650}
rules:
  - name: Base earn
    earn: {currency: BONUS, percent: "5"}
"""


def pytest_report_header() -> str:
    return f"kopilka test database: {BACKEND}"


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# The moment the ``clock`` fixture stops at: tests that depend on lot dates (availability,
# expiry, which lot is spent first) must not depend on the day they run.
PINNED = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


class Clock:
    """Kopilka's clock (``kopilka.core.db.now`` and every module that imported it), moved
    by hand in tests."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at = self.at + dt.timedelta(**kw)


@pytest.fixture
def clock_start() -> dt.datetime:
    """Where ``clock`` starts (a package's conftest may move it)."""
    return PINNED


# The modules whose ``now`` the clock moves: the ledger's (lot dates: availability,
# expiry, which lot is spent first) and core.db's (what reads it from there). Pinning every
# module stopped the clock of process-wide state too, which then outlived the test (a push
# subscription made after a ledger test counted as older than a later purchase).
CLOCKED = (core_db, ledger_service)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, clock_start: dt.datetime) -> Clock:
    """Kopilka's clock pinned at ``clock_start`` (``PINNED`` unless a conftest moves it)."""
    c = Clock(clock_start)
    for module in CLOCKED:
        monkeypatch.setattr(module, "now", c)
    # The outbox keeps its events' times increasing within the process; what a moved clock
    # wrote there must not outlive the test (a clock advanced a year left every later test's
    # events dated after it, so a worker on the real clock found nothing due to send).
    monkeypatch.setattr(events_service, "_last_created", list(events_service._last_created))
    return c


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    reset_settings_cache()
    if BACKEND == "sqlite":
        # Own temp dir, not pytest's basetemp: concurrent pytest runs prune each other's
        # basetemp and once corrupted a live SQLite file ("database disk image is malformed").
        tmp_dir = Path(tempfile.mkdtemp(prefix="kopilka-test-"))
        path = tmp_dir / "kopilka-test.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url=url)
        upgrade(engine)
        db = Database(engine)
        set_db(db)
        yield db
        set_db(None)
        db.dispose()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    if BACKEND != "postgresql":
        pytest.fail(f"KOPILKA_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
    name = f"kopilka_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    os.environ["KOPILKA_TEST_PG_DATABASE_URL"] = url
    engine = make_engine(url=url)
    try:
        upgrade(engine)
        db = Database(engine)
        set_db(db)
        yield db
    finally:
        set_db(None)
        engine.dispose()
        with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            # Lift the ledger's append-only guard while emptying, then restore it.
            for statement in guards.drop_statements("sqlite") + audit_guards.drop_statements(
                "sqlite"
            ):
                conn.execute(text(statement))
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
            for statement in guards.create_statements("sqlite") + audit_guards.create_statements(
                "sqlite"
            ):
                conn.execute(text(statement))


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """The test database, emptied after each test."""
    set_db(database)
    clear_cache()
    program_service.invalidate_cache()
    events_service.clear_cache()
    try:
        yield database
    finally:
        _truncate(database)
        clear_cache()
        program_service.invalidate_cache()
        ledger_service.clear_caches()
        events_service.clear_cache()


@pytest.fixture
def program(db: Database) -> Database:
    """The test programme applied."""
    spec = program_service.parse_program(TEST_PROGRAM)
    with db.session() as session:
        program_service.apply_program(session, spec, actor="test")
        session.commit()
    program_service.invalidate_cache()
    return db


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    from kopilka.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


KeyFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth(db: Database) -> KeyFactory:
    """``auth("admin")`` → headers with a fresh key of that role."""

    def make(
        role: str = "admin", store: str | None = None, partner: str | None = None
    ) -> dict[str, str]:
        if role == "cashier" and store is None:
            store = "msk-01"
        if role == "partner" and partner is None:
            partner = "acme"
        with db.session() as session:
            _, key = create_key(session, f"test {role}", role, store, partner)
            session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def admin(auth: KeyFactory) -> dict[str, str]:
    return auth("admin")
