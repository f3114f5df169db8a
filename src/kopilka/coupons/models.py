"""Coupon pools, their codes, the uses of codes and failed-attempt counters.

Invariants held by the database, not only by the code:
- a code's lookup key is unique across all pools;
- ``coupons.uses`` and ``coupon_member_uses.uses`` never go below zero, and the limits are
  enforced by conditional ``UPDATE … WHERE uses < limit`` (never check-then-act);
- a purchase uses one code at most once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, BigId, UTCDateTime, now, uuid_pk

# BIGINT identity on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias.


class CouponPool(Base):
    __tablename__ = "coupon_pools"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active','paused')",
            name="status_known",
        ),
        CheckConstraint(
            "reward_kind IN ('percent','fixed','points','multiplier','free_product')",
            name="reward_kind_known",
        ),
        CheckConstraint("uses_per_code IS NULL OR uses_per_code >= 1", name="uses_per_code_pos"),
        CheckConstraint(
            "uses_per_member IS NULL OR uses_per_member >= 1", name="uses_per_member_pos"
        ),
        CheckConstraint("code_count >= 0", name="code_count_nonneg"),
        CheckConstraint(
            "generation_status IN ('idle','queued','running','done','failed')",
            name="generation_status_known",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # the reward
    reward_kind: Mapped[str] = mapped_column(String(16))
    reward_value: Mapped[Decimal | None] = mapped_column(Amount)
    reward_currency: Mapped[str | None] = mapped_column(String(16))
    max_discount: Mapped[Decimal | None] = mapped_column(Amount)
    skus: Mapped[list[str]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    free_sku: Mapped[str | None] = mapped_column(String(100))
    free_quantity: Mapped[Decimal | None] = mapped_column(Amount)
    # conditions
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    min_receipt: Mapped[Decimal | None] = mapped_column(Amount)
    stores: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # limits
    uses_per_code: Mapped[int | None] = mapped_column(Integer)  # 1: single-use; None: no limit
    uses_per_member: Mapped[int | None] = mapped_column(Integer)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    # the pattern of generated codes
    prefix: Mapped[str] = mapped_column(String(16), default="")
    groups: Mapped[int] = mapped_column(Integer, default=2)
    group_length: Mapped[int] = mapped_column(Integer, default=4)
    code_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # the latest generation job and its progress
    generation_status: Mapped[str] = mapped_column(String(16), default="idle")
    generation_requested: Mapped[int] = mapped_column(BigInteger, default=0)
    generation_done: Mapped[int] = mapped_column(BigInteger, default=0)
    generation_error: Mapped[str | None] = mapped_column(String(500))
    generation_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    generation_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    generation_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
    created_by: Mapped[str] = mapped_column(String(200))


class Coupon(Base):
    """One code. ``uses`` counts its uses not given back (cancel, full return)."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("uses >= 0", name="uses_nonneg"),
        CheckConstraint("source IN ('generated','imported','personal')", name="source_known"),
        Index("ix_coupons_pool_id", "pool_id", "id"),
        Index("ix_coupons_member_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pool_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("coupon_pools.id", ondelete="CASCADE")
    )
    code: Mapped[str] = mapped_column(String(64))
    lookup: Mapped[str] = mapped_column(String(40), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="generated")
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class CouponUse(Base):
    """A code used on a purchase (a hold reserves it the same way); ``released_at`` is set
    when a cancel or a full return gives the use back."""

    __tablename__ = "coupon_uses"
    __table_args__ = (
        UniqueConstraint("coupon_id", "purchase_id"),
        Index("ix_coupon_uses_purchase_id", "purchase_id"),
        Index("ix_coupon_uses_coupon_id", "coupon_id", "used_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupons.id", ondelete="CASCADE"))
    pool_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # the purchases table belongs to another branch of the schema: no foreign key
    purchase_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    discount: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    points: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CouponMemberUses(Base):
    """How many uses of a pool's codes a member holds (for the per-member limit)."""

    __tablename__ = "coupon_member_uses"
    __table_args__ = (CheckConstraint("uses >= 0", name="uses_nonneg"),)

    pool_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("coupon_pools.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class CouponAttempt(Base):
    """Failed code look-ups per caller (API key, member or IP) per fixed time window."""

    __tablename__ = "coupon_attempts"

    caller: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
