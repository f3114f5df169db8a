"""Rollup tables: the read model the dashboards query instead of the raw tables.

Everything here is derived from purchases, the ledger and members and can be rebuilt at
any time (``kopilka reports rollup --full``). Days are local days of the programme's time
zone. Empty strings stand for "none" in key columns (no store, no channel, no tier), so
that they can be part of primary keys on both databases.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime


class ReportMember(Base):
    """One row per member: the local day they joined, their control-group bucket, and a
    dense number (0, 1, 2 … in the order the rollup met them) that indexes the members'
    arrays of ``report_member_sets`` and ``report_member_index``."""

    __tablename__ = "report_members"
    __table_args__ = (Index("ix_report_members_joined_day", "joined_day", "bucket"),)

    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    joined_day: Mapped[dt.date] = mapped_column(Date)
    # 0 … 9999 from a hash of the id: the member is in the control group when
    # bucket < control_group_share × 10 000 (see ``reports.service.bucket_of``)
    bucket: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer, unique=True)


class SalesDaily(Base):
    """Confirmed receipts per day, store, channel, tier and whether a card was shown."""

    __tablename__ = "report_sales_daily"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    carded: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    receipts: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(Amount)  # money paid (total_due)
    subtotal: Mapped[Decimal] = mapped_column(Amount)
    discount: Mapped[Decimal] = mapped_column(Amount)
    redeemed_value: Mapped[Decimal] = mapped_column(Amount)  # points spent, in money


class PointsDaily(Base):
    """Points moved in or out of member wallets per day and flow (see ``reports.flows``)."""

    __tablename__ = "report_points_daily"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    flow: Mapped[str] = mapped_column(String(16), primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Amount)


class MemberDay(Base):
    """A member bought on a day (at a store, through a channel): the basis of active
    members, cohort retention and the control-group comparison."""

    __tablename__ = "report_member_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))
    receipts: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(Amount)


class CohortCell(Base):
    """Members who joined on ``joined_day`` and bought in ``month`` (its first day), by
    joining *day* so that a cohort cut by a period (joined from the 10th of March) counts
    the same members in its cells as in its size."""

    __tablename__ = "report_cohorts"

    joined_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    members: Mapped[int] = mapped_column(Integer)


class RollupState(Base):
    """Watermarks of the rollup job (what it has read so far)."""

    __tablename__ = "report_rollup_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MemberSet(Base):
    """One local day of ``report_member_days`` in columns: the members who bought (their
    ``report_members.number``, little-endian uint32) and what each paid that day (units
    of 1/10 000: int32 when all of the day's fit, else int64), one entry per member-day
    row, grouped by store, channel and tier (``segments``: ``[store, channel, tier,
    entries]`` in the order of the arrays). ``run`` names the rollup run that wrote the
    day, so readers can keep decoded days until it changes
    (``kopilka.reports.membersets``)."""

    __tablename__ = "report_member_sets"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    run: Mapped[str] = mapped_column(String(32))
    segments: Mapped[list[Any]] = mapped_column(JSON)
    members: Mapped[bytes] = mapped_column(LargeBinary)
    revenues: Mapped[bytes] = mapped_column(LargeBinary)


class MemberIndex(Base):
    """What the reports need of each member, by number, in chunks of ``CHUNK`` numbers:
    the day they joined (int32 day ordinals, little-endian) and their control-group
    bucket (int16). ``run`` as in ``MemberSet``."""

    __tablename__ = "report_member_index"

    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run: Mapped[str] = mapped_column(String(32))
    joined: Mapped[bytes] = mapped_column(LargeBinary)
    buckets: Mapped[bytes] = mapped_column(LargeBinary)
