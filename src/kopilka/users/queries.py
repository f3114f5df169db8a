"""What other parts read of the console users' table (signing in to the console)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.users.models import User as User  # the type other domains are handed


def user_by_email(session: Session, email: str) -> User | None:
    """The user whose (normalised) email is ``email``, or None."""
    return session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    """The user ``user_id`` (from the session's identity map if it holds them), or None."""
    return session.get(User, user_id)
