"""TOTP secrets are encrypted at rest: in the models, and by the migration 0706 for the
secrets stored before it (and back by its downgrade)."""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyotp
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from kopilka.core.db import Database, make_engine
from kopilka.core.migrate import alembic_config, upgrade
from kopilka.security import crypto
from tests.conftest import BACKEND, PG_ADMIN_URL
from tests.console.test_console import csrf_of, make_user, sign_in


def _raw(db: Database, sql: str) -> list[tuple[object, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_an_enrolled_secret_is_stored_encrypted_and_still_signs_in(
    program: Database, client: TestClient
) -> None:
    # given a user who opened the enrolment page
    email = make_user(program)
    sign_in(client, email)
    page = client.get("/admin/account")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text).group(1)  # type: ignore[union-attr]
    # then the pending secret in the session row is a sealed token, not the secret
    [(pending,)] = _raw(
        program, "SELECT pending_totp_secret FROM console_sessions WHERE revoked_at IS NULL"
    )
    assert isinstance(pending, str) and secret not in pending
    assert crypto.decrypt(pending, "console_sessions.pending_totp_secret") == secret
    # when the user proves the secret with a code
    r = client.post(
        "/admin/account/totp",
        data={"code": pyotp.TOTP(secret).now(), "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # then the user's secret is sealed too, bound to its column (another context fails)
    [(stored,)] = _raw(program, "SELECT totp_secret FROM users")
    assert isinstance(stored, str) and secret not in stored
    assert crypto.decrypt(stored, "users.totp_secret") == secret
    try:
        crypto.decrypt(stored, "console_sessions.pending_totp_secret")
        raise AssertionError("a token decrypted under another column's context")
    except crypto.DecryptionError:
        pass
    # and signing in asks for the second factor, which the secret still answers
    client.cookies.clear()
    assert sign_in(client, email).headers["location"].startswith("/admin/login/totp")
    form = client.get("/admin/login/totp")
    code = pyotp.TOTP(secret).at(int(time.time()) + 30)  # the enrolment's code is spent
    r = client.post(
        "/admin/login/totp",
        data={"code": code, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303


@contextmanager
def _scratch_engine() -> Iterator[Engine]:
    """An empty database of the backend under test, dropped afterwards."""
    if BACKEND == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="kopilka-0706-"))
        engine = make_engine(url=f"sqlite:///{tmp / 'm.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
            shutil.rmtree(tmp, ignore_errors=True)
        return
    name = f"kopilka_test_0706_{secrets.token_hex(4)}"
    admin_url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url=make_url(PG_ADMIN_URL).set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migration_seals_existing_secrets_and_its_downgrade_opens_them() -> None:
    with _scratch_engine() as engine:
        # given a database before 0706 with a user's secret and a pending one in clear
        upgrade(engine, "0601")
        user_id = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role, totp_secret, "
                    "failed_logins, created_at) VALUES (:id, 'a@example.com', 'x', 'admin', "
                    "'JBSWY3DPEHPK3PXP', 0, CURRENT_TIMESTAMP)"
                ),
                {"id": user_id.hex if engine.dialect.name == "sqlite" else user_id},
            )
            conn.execute(
                text(
                    "INSERT INTO console_sessions (id, user_id, stage, csrf_token, created_at, "
                    "last_seen_at, expires_at, pending_totp_secret) VALUES ('s1', :id, "
                    "'full', 'c', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                    "'KRSXG5CTMVRXEZLU')"
                ),
                {"id": user_id.hex if engine.dialect.name == "sqlite" else user_id},
            )
        # when 0706 runs
        upgrade(engine, "0706")
        with engine.connect() as conn:
            sealed = conn.execute(text("SELECT totp_secret FROM users")).scalar_one()
            pending = conn.execute(
                text("SELECT pending_totp_secret FROM console_sessions")
            ).scalar_one()
        # then both are sealed tokens of the same secrets
        assert sealed != "JBSWY3DPEHPK3PXP"
        assert crypto.decrypt(sealed, "users.totp_secret") == "JBSWY3DPEHPK3PXP"
        assert crypto.decrypt(pending, "console_sessions.pending_totp_secret") == (
            "KRSXG5CTMVRXEZLU"
        )
        # and the downgrade gives the clear values back
        command.downgrade(alembic_config(engine), "0706-1")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT totp_secret FROM users")).scalar_one() == (
                "JBSWY3DPEHPK3PXP"
            )
            assert conn.execute(
                text("SELECT pending_totp_secret FROM console_sessions")
            ).scalar_one() == ("KRSXG5CTMVRXEZLU")
