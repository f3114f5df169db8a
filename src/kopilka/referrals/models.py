"""The referrals' tables: one referral per friend, its rewards, the identities every member
enrolled with (kept after an erasure, as keyed digests only), and the invite links opened."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

STATUSES = ("joined", "qualified", "rewarded", "rejected", "reversed")
REVIEWS = ("none", "pending", "approved", "rejected")
ROLES = ("friend", "referrer", "bonus")
REWARD_STATUSES = ("pending", "standing", "revoked")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Referral(Base):
    """A friend enrolled with a member's referral code: ``status`` and its ``reason``,
    the ``review`` a flagged one waits for, and what qualified it."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        CheckConstraint(_in("review", REVIEWS), name="review_known"),
        CheckConstraint("referrer_id <> friend_id", name="not_self"),
        Index("ix_referrals_referrer", "referrer_id", "created_at"),
        Index("ix_referrals_status", "status", "hold_until"),
        Index("ix_referrals_review", "review", "created_at"),
        Index("ix_referrals_device", "device", "created_at"),
        Index("ix_referrals_cashier", "cashier", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    referrer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    friend_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    review: Mapped[str] = mapped_column(String(16), default="none")
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # where the friend enrolled: the API's channel, the store and cashier (an API key's or
    # user's name), the member app's device (a keyed digest)
    channel: Mapped[str] = mapped_column(String(16))
    store: Mapped[str | None] = mapped_column(String(64))
    cashier: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(64))
    # how many times the referral qualified (a reversal lets it qualify again)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    qualifying_purchase_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    qualified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hold_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rewarded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class ReferralReward(Base):
    """A reward of a referral: points posted to the ledger as a lot pending until the hold
    ends (``entry_id``), or a personal code of a coupon pool, issued when the hold is
    over (a coupon cannot wait: ``coupon_pool``, ``coupon_code``)."""

    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role_known"),
        CheckConstraint(_in("status", REWARD_STATUSES), name="status_known"),
        CheckConstraint("(entry_id IS NULL) <> (coupon_pool IS NULL)", name="points_or_coupon"),
        UniqueConstraint("referral_id", "round", "role"),
        Index("ix_referral_rewards_member", "member_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("referrals.id"))
    round: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    currency: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Amount)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    coupon_pool: Mapped[str | None] = mapped_column(String(200))
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReferralIdentity(Base):
    """A phone, email (as written and normalised) or card number some member enrolled
    with, as the keyed digest of ``security.crypto.blind_index``: kept after the member's
    erasure so that the same person enrolling again is not a new friend (no personal data:
    the digest cannot be read back)."""

    __tablename__ = "referral_identities"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class ReferralVisit(Base):
    """An invite link opened (``/app/r/{code}``): the first step of the funnel."""

    __tablename__ = "referral_visits"
    __table_args__ = (Index("ix_referral_visits_at", "at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    referrer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
