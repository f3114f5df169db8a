"""Tables of the tiers: each member's tier state (floor, grace) and the history of changes.

The member's current tier itself stays in ``members.tier`` (the rules engine and the
member app read it there); these tables hold what decides it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

REASONS = ("upgrade", "downgrade", "grace_expired", "manual", "program_changed")


class MemberTier(Base):
    """A member's floor (manual assignment) and grace period; one row per member, made on
    the first change. The row is also what a tier change locks."""

    __tablename__ = "member_tiers"

    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"), primary_key=True)
    # manual assignment: the member is at least this tier until ``floor_until`` (or forever)
    floor_tier: Mapped[str | None] = mapped_column(String(32))
    floor_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    floor_reason: Mapped[str | None] = mapped_column(String(500))
    floor_set_by: Mapped[str | None] = mapped_column(String(200))
    floor_set_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # below the threshold of their tier since a re-evaluation: kept until then
    grace_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class TierChange(Base):
    """Append-only history: every change of a member's tier, why, when and by whom."""

    __tablename__ = "tier_changes"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('upgrade','downgrade','grace_expired','manual','program_changed')",
            name="reason_known",
        ),
        Index("ix_tier_changes_member", "member_id", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    from_tier: Mapped[str | None] = mapped_column(String(32))
    to_tier: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    # the qualifying value at the change (in the metric's unit), for the record
    qualifying_value: Mapped[Decimal | None] = mapped_column(Amount)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
