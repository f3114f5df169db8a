"""Signing console users in and out, their sessions, CSRF tokens, TOTP and lockout.

* The session cookie carries a random 256-bit token; the database keeps only its SHA-256
  (``console_sessions.id``). Sessions end after ``IDLE`` without use or ``LIFETIME`` at
  most, and at sign-out.
* Every session has its own CSRF token, required on every form post (and in the
  ``X-CSRF-Token`` header when the session calls ``/api/v1`` with an unsafe method).
* A user with a TOTP secret signs in in two steps: the password opens a session in stage
  ``totp``, a valid code (each accepted once) turns it into ``full``.
* ``MAX_FAILURES`` wrong passwords or codes in a row lock the account for ``LOCK_FOR``;
  the counter is reset by a successful sign-in. Unknown emails cost the same time as
  known ones (a password hash is verified either way).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.console.models import ConsoleSession, TotpStep
from kopilka.core.db import now
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.users.queries import User, get_user, user_by_email
from kopilka.users.service import check_password, count_failed_sign_in, lock_out

COOKIE = "kopilka_console"
IDLE = dt.timedelta(hours=2)
LIFETIME = dt.timedelta(hours=12)
MAX_FAILURES = 5
LOCK_FOR = dt.timedelta(minutes=15)
TOTP_ISSUER = "Kopilka"
# How often the last-seen time of a session is written (not on every request).
TOUCH_EVERY = dt.timedelta(minutes=1)

# A real Argon2 hash to verify against when the email is unknown, so that the answer
# takes as long as for a known one.
_DUMMY_HASH = PasswordHasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Current:
    """The signed-in user of a request."""

    session_id: str
    user_id: uuid.UUID
    email: str
    role: str
    stage: str
    csrf: str
    has_totp: bool

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"

    @property
    def principal(self) -> Principal:
        return Principal(kind="user", id=str(self.user_id), role=self.role, name=self.email)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _locked(user: User, at: dt.datetime) -> bool:
    return user.locked_until is not None and user.locked_until > at


def _locked_problem(user: User, at: dt.datetime) -> Problem:
    assert user.locked_until is not None
    minutes = max(1, int((user.locked_until - at).total_seconds() // 60) + 1)
    return Problem(
        423,
        "account_locked",
        f"too many failed attempts; try again in {minutes} min",
        extra={"retry_after_minutes": minutes},
    )


def _fail(session: Session, user: User, what: str, ip: str | None) -> None:
    """Count a failed attempt (atomically) and lock the account at ``MAX_FAILURES``;
    committed, because the caller is about to answer with an error."""
    at = now()
    failures = count_failed_sign_in(session, user.id)
    record(
        session,
        f"user:{user.id}",
        f"console.{what}_failed",
        "user",
        str(user.id),
        details={"ip": ip, "failures": failures},
    )
    if failures >= MAX_FAILURES:
        lock_out(session, user.id, at + LOCK_FOR)
        session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.user_id == user.id, ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        record(
            session,
            "system:console",
            "console.locked",
            "user",
            str(user.id),
            details={"until": (at + LOCK_FOR).isoformat(), "ip": ip},
        )
    session.commit()


def _new_session(
    session: Session, user: User, stage: str, ip: str | None, user_agent: str | None
) -> str:
    token = secrets.token_urlsafe(32)
    at = now()
    session.add(
        ConsoleSession(
            id=_digest(token),
            user_id=user.id,
            stage=stage,
            csrf_token=secrets.token_urlsafe(32),
            created_at=at,
            last_seen_at=at,
            expires_at=at + LIFETIME,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token


def sign_in(
    session: Session, email: str, password: str, ip: str | None, user_agent: str | None
) -> tuple[str, str]:
    """Check a password. Returns ``(cookie token, stage)`` with the session committed;
    stage ``totp`` means the second factor is still to come. Raises 401
    ``sign_in_failed`` (wrong email or password, the same answer for both) or 423
    ``account_locked``."""
    email = email.strip().lower()
    user = user_by_email(session, email)
    at = now()
    if user is None:
        _burn(password)
        raise Problem(401, "sign_in_failed", "wrong email or password")
    if _locked(user, at):
        raise _locked_problem(user, at)
    if not check_password(user, password):
        _fail(session, user, "sign_in", ip)
        session.refresh(user)
        if _locked(user, now()):
            raise _locked_problem(user, now())
        raise Problem(401, "sign_in_failed", "wrong email or password")
    stage = "totp" if user.totp_secret else "full"
    token = _new_session(session, user, stage, ip, user_agent)
    if stage == "full":
        user.failed_logins = 0
        record(
            session, f"user:{user.id}", "console.sign_in", "user", str(user.id), details={"ip": ip}
        )
    session.commit()
    return token, stage


def _burn(password: str) -> None:
    # The point is the time it takes: an unknown email answers as slowly as a known one.
    with contextlib.suppress(VerificationError):
        PasswordHasher().verify(_DUMMY_HASH, password)


def load(session: Session, token: str | None, *, stage: str | None = "full") -> Current | None:
    """The session a cookie names, if it is live (and in ``stage``, unless None)."""
    if not token or len(token) > 200:
        return None
    row = session.get(ConsoleSession, _digest(token))
    at = now()
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= at
        or row.last_seen_at + IDLE <= at
        or (stage is not None and row.stage != stage)
    ):
        return None
    user = get_user(session, row.user_id)
    if user is None or _locked(user, at):
        return None
    if at - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = at
        session.commit()
    return Current(
        session_id=row.id,
        user_id=user.id,
        email=user.email,
        role=user.role,
        stage=row.stage,
        csrf=row.csrf_token,
        has_totp=bool(user.totp_secret),
    )


def check_csrf(current: Current, supplied: str | None) -> None:
    """403 ``csrf_invalid`` unless ``supplied`` is the session's token."""
    if not supplied or not hmac.compare_digest(supplied.encode(), current.csrf.encode()):
        raise Problem(403, "csrf_invalid", "the form's security token is missing or stale")


def sign_out(session: Session, current: Current) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == current.session_id)
        .values(revoked_at=now())
    )
    record(session, current.actor, "console.sign_out", "user", str(current.user_id))
    session.commit()


# ---------------------------------------------------------------------------- TOTP


def _accept_code(session: Session, user_id: uuid.UUID, secret: str, code: str) -> bool:
    """Whether ``code`` is valid now (±1 step of 30 s) and newer than the last one
    accepted for this user; records its step when it is."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    step_now = int(time.time()) // totp.interval
    last = session.get(TotpStep, user_id)
    for step in (step_now - 1, step_now, step_now + 1):
        if last is not None and step <= last.last_step:
            continue
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            if last is None:
                session.add(TotpStep(user_id=user_id, last_step=step))
            else:
                last.last_step = step
            return True
    return False


def verify_totp(session: Session, token: str, code: str, ip: str | None) -> str:
    """The second step of signing in; returns the new session's cookie token (committed).
    401 ``totp_invalid`` for a wrong (or replayed) code, 423 ``account_locked`` after too
    many."""
    pending = load(session, token, stage="totp")
    if pending is None:
        raise Problem(401, "unauthorized", "sign in with your password first")
    user = get_user(session, pending.user_id)
    assert user is not None and user.totp_secret
    if not _accept_code(session, user.id, user.totp_secret, code):
        _fail(session, user, "totp", ip)
        session.refresh(user)
        if _locked(user, now()):
            raise _locked_problem(user, now())
        raise Problem(401, "totp_invalid", "the code is wrong or was used already")
    row = session.get(ConsoleSession, pending.session_id)
    assert row is not None
    # A fresh token for the signed-in session (the half-signed-in one is retired).
    row.revoked_at = now()
    new = _new_session(session, user, "full", ip, row.user_agent)
    user.failed_logins = 0
    record(
        session,
        f"user:{user.id}",
        "console.sign_in",
        "user",
        str(user.id),
        details={"ip": ip, "totp": True},
    )
    session.commit()
    return new


def start_enrolment(session: Session, current: Current) -> str:
    """A new TOTP secret for the user, kept in their session until a code confirms it."""
    row = session.get(ConsoleSession, current.session_id)
    assert row is not None
    if row.pending_totp_secret is None:
        row.pending_totp_secret = pyotp.random_base32()
        session.commit()
    return row.pending_totp_secret


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def confirm_enrolment(session: Session, current: Current, code: str) -> None:
    """Turn the pending secret on once a code from the authenticator app matches it."""
    row = session.get(ConsoleSession, current.session_id)
    assert row is not None
    secret = row.pending_totp_secret
    if secret is None:
        raise Problem(409, "totp_invalid", "start the enrolment again")
    if not _accept_code(session, current.user_id, secret, code):
        raise Problem(
            422,
            "totp_invalid",
            "the code does not match; check the time on the phone",
            errors=[{"field": "code", "code": "totp_invalid", "message": "wrong code"}],
        )
    user = get_user(session, current.user_id)
    assert user is not None
    user.totp_secret = secret
    row.pending_totp_secret = None
    record(session, current.actor, "console.totp_enabled", "user", str(user.id))
    session.commit()


def disable_totp(session: Session, current: Current, password: str) -> None:
    """Switch the second factor off (the password is asked again)."""
    user = get_user(session, current.user_id)
    assert user is not None
    if not check_password(user, password):
        raise Problem(
            422,
            "sign_in_failed",
            "wrong password",
            errors=[{"field": "password", "code": "wrong", "message": "wrong password"}],
        )
    user.totp_secret = None
    record(session, current.actor, "console.totp_disabled", "user", str(user.id))
    session.commit()
