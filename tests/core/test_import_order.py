"""A column's type, and so every statement built from it, must not depend on import order.

Regression (issue 19): SQLAlchemy 2.1 gives a ``mapped_column(ForeignKey(...))`` without
a type of its own the type of the column it points at only once that table is in the
metadata. ``ledger.service`` builds its wallet lock at import, with an expanding ``IN``
over ``ledger_accounts.member_id``; the server imported it before ``members.models``, so
the bind stayed untyped and SQLite refused the ``uuid.UUID`` values (a 500 on every first
adjustment or purchase of a member). The suite never saw it: ``tests/conftest.py`` imports
``kopilka.models`` (every table) before anything else. These tests import in fresh
interpreters, the way a server process does.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause

import kopilka

MODELS = sorted(
    m.name
    for m in pkgutil.walk_packages(kopilka.__path__, "kopilka.")
    if m.name.endswith(".models") and m.name != "kopilka.models"
)


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_column_is_typed_when_its_models_module_is_imported_alone() -> None:
    # given each models module, imported alone in a fresh interpreter
    # (one interpreter per module: the first import must already type its columns)
    failures = []
    for name in MODELS:
        probe = f"""
            import importlib
            from sqlalchemy.types import NullType
            from kopilka.core.db import Base
            importlib.import_module({name!r})
            print([
                f"{{t.name}}.{{c.name}}"
                for t in Base.metadata.tables.values()
                for c in t.columns
                if isinstance(c.type, NullType)
            ])
        """
        done = _run(probe)
        assert done.returncode == 0, done.stderr
        # when its columns are inspected; then none is of NullType
        if done.stdout.strip() != "[]":
            failures.append(f"{name}: {done.stdout.strip()}")
    assert MODELS
    assert failures == []


def _statements(module: object) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        # text() is left out: its binds are typed by hand where needed, not by columns
        if isinstance(value, ClauseElement) and not isinstance(value, TextClause)
    ]


def test_statements_built_at_import_have_typed_parameters() -> None:
    # given every module that builds statements at import time
    holders = {}
    for info in pkgutil.walk_packages(kopilka.__path__, "kopilka."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        names = _statements(importlib.import_module(info.name))
        if names:
            holders[info.name] = names
    assert "kopilka.ledger.service" in holders
    untyped: list[str] = []
    for module, names in holders.items():
        # when it is the first module a fresh interpreter imports
        probe = f"""
            import importlib
            from sqlalchemy.sql.elements import BindParameter
            from sqlalchemy.types import NullType
            m = importlib.import_module({module!r})
            print([
                f"{{name}}: {{b.key}}"
                for name in {names!r}
                for b in getattr(m, name)._get_embedded_bindparams()
                if isinstance(b.type, NullType)
            ])
        """
        done = _run(probe)
        assert done.returncode == 0, done.stderr
        if done.stdout.strip() != "[]":
            untyped.append(f"{module}: {done.stdout.strip()}")
    # then each bind parameter has a type, so values are converted alike on every database
    assert untyped == []


def test_a_fresh_process_adjusts_a_new_members_balance_on_sqlite(tmp_path: Path) -> None:
    # given what a user does first, in one fresh interpreter that imports only what the
    # server imports: migrate, apply a programme, make a key, serve the app
    program = tmp_path / "programme.yaml"
    program.write_text(
        textwrap.dedent(
            """
            name: Fresh
            base_currency: RUB
            timezone: Europe/Moscow
            currencies:
              - {code: BONUS, name: Bonus, precision: 2, value: "1.00", redeem_max_share: "0.5"}
            stores:
              - {code: msk-01, name: "One"}
              - {code: msk-02, name: "Two"}
            rules:
              - {name: Base, earn: {currency: BONUS, percent: "5"}}
            """
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    env |= {
        "KOPILKA_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "KOPILKA_EMBEDDED_WORKER": "false",
        "KOPILKA_LOG_LEVEL": "ERROR",
    }
    for args in (["migrate"], ["program", "apply", str(program)]):
        subprocess.run([sys.executable, "-m", "kopilka", *args], env=env, check=True)
    made = subprocess.run(
        [sys.executable, "-m", "kopilka", "apikey", "create", "--name", "a", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    code = f"""
        from fastapi.testclient import TestClient
        from kopilka.main import create_app
        h = {{"Authorization": "Bearer {key}"}}
        with TestClient(create_app(), raise_server_exceptions=False) as c:
            member = c.post("/api/v1/members", json={{"email": "ivan@example.com"}}, headers=h)
            assert member.status_code == 201, member.text
            mid = member.json()["id"]
            adj = c.post(f"/api/v1/members/{{mid}}/adjustments", headers=h,
                         json={{"currency": "BONUS", "amount": "5.00", "reason": "welcome"}})
            print(adj.status_code)
    """
    # when the member's balance is adjusted for the first time
    done = _run(code, env)
    # then it is posted (500 before the fix: an untyped UUID bind on SQLite)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "201"


@pytest.mark.parametrize("module", MODELS)
def test_models_modules_are_listed_in_the_registry(module: str) -> None:
    # given the registry that makes the metadata complete; then it names every models module
    registry = (Path(kopilka.__file__).parent / "models.py").read_text(encoding="utf-8")
    assert f"import {module}" in registry
