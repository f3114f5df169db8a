"""Custom events (``POST /api/v1/events``) and the rewards their rules gave.

``activities.external_id`` is unique: an event sent twice, even at the same instant, is
recorded once. ``activity_rewards`` holds one row per rule that matched an event; the
limits count its ``granted`` rows per member, rule and period.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

REWARD_STATUSES = ("granted", "limited", "rejected")


class Activity(Base):
    """One custom event of a member, as the caller sent it, with the answer it got."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_member", "member_id", "id"),
        Index("ix_activities_occurred_at", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    type: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the answer without ``properties`` (kept apart so that erasure blanks one place)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_hash: Mapped[str] = mapped_column(String(64))
    program_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    created_by: Mapped[str] = mapped_column(String(200))


class ActivityReward(Base):
    """What one event rule did for one event: granted, limited or rejected (with why)."""

    __tablename__ = "activity_rewards"
    __table_args__ = (
        CheckConstraint("status IN ('granted','limited','rejected')", name="status_known"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_pos"),
        Index("ix_activity_rewards_limits", "member_id", "rule", "status", "occurred_at"),
        Index("ix_activity_rewards_activity_id", "activity_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    activity_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("activities.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    rule: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    # the event's time, copied so that the limits count with one index
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Amount)
    coupon_pool: Mapped[str | None] = mapped_column(String(200))
    coupon_code: Mapped[str | None] = mapped_column(String(64))
