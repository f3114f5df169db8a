"""Console users: creation, password checks, failed sign-ins counted and lock-outs."""

from __future__ import annotations

import datetime as dt
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.members.schemas import normalise_email
from kopilka.users.models import USER_ROLES, User

_hasher = PasswordHasher()
MIN_PASSWORD = 10


def create_user(session: Session, email: str, role: str, password: str) -> User:
    """A console user (not committed). 422 for a bad email, role or short password."""
    errors = []
    try:
        email = normalise_email(email)
    except ValueError as exc:
        errors.append(field_error("email", str(exc)))
    if role not in USER_ROLES:
        errors.append(field_error("role", f"must be one of {', '.join(USER_ROLES)}"))
    if len(password) < MIN_PASSWORD:
        errors.append(field_error("password", f"at least {MIN_PASSWORD} characters"))
    if errors:
        raise validation_problem(errors)
    if session.execute(select(User.id).where(User.email == email)).first():
        raise Problem(409, "user_exists", f"a console user {email} exists")
    user = User(email=email, role=role, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    return user


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError):
        return False


def count_failed_sign_in(session: Session, user_id: uuid.UUID) -> int:
    """Add one to the user's failed sign-in attempts, atomically; how many there are now."""
    failures: int = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    ).scalar_one()
    return failures


def lock_out(session: Session, user_id: uuid.UUID, until: dt.datetime) -> None:
    """Lock the user's account until ``until``, the count of failed attempts back to 0."""
    session.execute(
        update(User).where(User.id == user_id).values(locked_until=until, failed_logins=0)
    )
