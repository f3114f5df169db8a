"""Console sessions and the last TOTP time step each user signed in with."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Base, UTCDateTime, now
from kopilka.security.crypto import EncryptedText


class ConsoleSession(Base):
    """A signed-in browser. Only a SHA-256 of the cookie's token is stored (``id``), so a
    copy of the table signs nobody in. ``stage`` is ``totp`` between the password and the
    second factor, ``full`` after."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint("stage IN ('totp','full')", name="stage_known"),
        Index("ix_console_sessions_user", "user_id", "created_at"),
        Index("ix_console_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    stage: Mapped[str] = mapped_column(String(8))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # a TOTP secret being enrolled (encrypted): kept here until the user proves it with a code
    pending_totp_secret: Mapped[str | None] = mapped_column(
        EncryptedText("console_sessions.pending_totp_secret")
    )


class TotpStep(Base):
    """The last TOTP time step accepted per user: a code is good once (no replay)."""

    __tablename__ = "console_totp_steps"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    last_step: Mapped[int] = mapped_column(BigInteger)
