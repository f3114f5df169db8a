"""Console users (the programme team). Passwords are Argon2id hashes; TOTP secrets are
encrypted at rest."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Base, UTCDateTime, now, uuid_pk
from kopilka.security.crypto import EncryptedText

USER_ROLES = ("admin", "manager", "analyst", "support")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin','manager','analyst','support')", name="role_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText("users.totp_secret"))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
