"""The challenges' tables: a member's opt-ins, their progress per challenge and period, what
each receipt, event or friend contributed (the unique key that makes a replay count once,
and what a return recomputes on), the rewards of each step reached, and members' badges."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

REWARD_STATUSES = ("pending", "standing", "revoked", "control_group")


class ChallengeJoin(Base):
    """A member's opt-in to a ``join: opt_in`` challenge (a ``period: {days: N}`` counts
    from ``joined_at``)."""

    __tablename__ = "challenge_joins"
    __table_args__ = (UniqueConstraint("member_id", "challenge"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    challenge: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16), default="api")


class ChallengeEntry(Base):
    """A member's progress in one period of a challenge: ``value`` (the goal's count or
    sum, or a streak's run) and the ladder's ``steps_done`` (each rewarded once)."""

    __tablename__ = "challenge_entries"
    __table_args__ = (
        UniqueConstraint("member_id", "challenge", "period_key"),
        # a receipt reads the member's current periods first (``hook.columns``)
        Index("ix_challenge_entries_member", "member_id", "period_end"),
        Index("ix_challenge_entries_challenge", "challenge", "period_key"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    challenge: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    value: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the member app's notice of a completion, shown once
    noticed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class ChallengeContribution(Base):
    """What one receipt (``purchase:<id>``), custom event (``event:<id>``) or friend
    (``referral:<id>``) gave a member's period of a challenge: once, by the unique key.
    A receipt's keeps its counted lines (``lines``: line number → quantity and money
    paid, what is left after returns) so that a return recomputes on what is left."""

    __tablename__ = "challenge_contributions"
    __table_args__ = (
        UniqueConstraint("member_id", "challenge", "period_key", "source"),
        Index("ix_challenge_contributions_source", "member_id", "source"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    challenge: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(80))
    value: Mapped[Decimal] = mapped_column(Amount)
    tokens: Mapped[list[str]] = mapped_column(JSON, default=list)
    lines: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paid: Mapped[Decimal | None] = mapped_column(Amount)
    store: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    day: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class ChallengeReward(Base):
    """The reward of one step reached: points as a ledger entry pending until
    ``hold_until``, a coupon code, a badge. ``revoked`` when a return undid the step before
    then; ``control_group``: a member of the control group, who gets nothing."""

    __tablename__ = "challenge_rewards"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'standing', 'revoked', 'control_group')", name="status_known"
        ),
        # a step revoked by a return and reached again is a new round
        UniqueConstraint("member_id", "challenge", "period_key", "step", "round"),
        Index("ix_challenge_rewards_challenge", "challenge", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    challenge: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Amount)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    coupon_pool: Mapped[str | None] = mapped_column(String(200))
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    badge: Mapped[str | None] = mapped_column(String(64))
    hold_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MemberBadge(Base):
    """A badge a member holds: from a challenge (``challenge:<code>``), an event rule
    (``rule:<name>``) or a person (``staff``); ``revoked_at`` when taken back."""

    __tablename__ = "member_badges"
    __table_args__ = (
        UniqueConstraint("member_id", "badge"),
        Index("ix_member_badges_badge", "badge", "awarded_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    badge: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    awarded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
