"""Tables of the rules engine: rule versions, what rules gave (per member per period, per
campaign, per purchase)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now


class RuleVersion(Base):
    """Every distinct definition a rule has had, kept forever. A change makes a new version;
    purchases name the versions they used, so history is never rewritten."""

    __tablename__ = "rule_versions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    program_version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    # None when the rule was removed from the programme in this programme version
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    created_by: Mapped[str | None] = mapped_column(String(200))


class RuleUsage(Base):
    """What a rule with a per-member cap gave a member in one period (local start date)."""

    __tablename__ = "rule_usage"

    rule_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(primary_key=True)
    unit: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Amount)


class CampaignSpend(Base):
    """What a campaign's rules have given so far (points of, or money in, ``currency``)."""

    __tablename__ = "campaign_spend"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    currency: Mapped[str] = mapped_column(String(16))
    spent: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class PurchaseRule(Base):
    """Which rule (and version) gave what on a purchase: reports, campaign spend, and the
    reversal of caps and budgets when the purchase is cancelled."""

    __tablename__ = "purchase_rules"
    __table_args__ = (Index("ix_purchase_rules_campaign", "campaign", "purchase_id"),)

    purchase_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("purchases.id"), primary_key=True
    )
    rule_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(16), primary_key=True)
    rule_version: Mapped[int | None] = mapped_column(Integer)
    effect: Mapped[str] = mapped_column(String(16))
    campaign: Mapped[str | None] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    period_start: Mapped[dt.date | None]
    amount: Mapped[Decimal] = mapped_column(Amount)
    released: Mapped[bool] = mapped_column(default=False)
