"""Tables of the security package: rate-limit counters, velocity events and review flags."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Base, UTCDateTime, now, uuid_pk


class RateCounter(Base):
    """One sliding-window counter (the current and the previous fixed window).

    ``bucket`` is a SHA-256 of the limit's name and the subject (key id, address, member),
    so addresses are not kept in the clear."""

    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer)
    prev_count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # Unix seconds


class VelocityEvent(Base):
    """A fact the velocity rules look back on (a redemption, a purchase at a store)."""

    __tablename__ = "velocity_events"
    __table_args__ = (
        Index("ix_velocity_events_member_kind_at", "member_id", "kind", "at"),
        UniqueConstraint("purchase_id", "kind"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(32))
    store: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the purchase it was read from (the ``security.velocity`` job notes each one once)
    purchase_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class SecurityFlag(Base):
    """A suspicious pattern for a person to review; one per rule, member and time slot."""

    __tablename__ = "security_flags"
    __table_args__ = (
        CheckConstraint("status IN ('open','dismissed','confirmed')", name="status_known"),
        Index("ix_security_flags_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    rule: Mapped[str] = mapped_column(String(50))
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(500))
