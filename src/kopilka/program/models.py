"""Tables of the programme: its applied versions, currencies and stores."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now


class ProgramVersion(Base):
    """Every applied programme file, kept forever; the highest version is in force."""

    __tablename__ = "program_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    applied_by: Mapped[str | None] = mapped_column(String(200))


class Currency(Base):
    __tablename__ = "currencies"
    __table_args__ = (
        CheckConstraint("precision BETWEEN 0 AND 4", name="precision_range"),
        CheckConstraint("pending_days >= 0", name="pending_days_nonneg"),
        CheckConstraint("redeem_max_share >= 0 AND redeem_max_share <= 9900", name="cap_range"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    precision: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(Amount)
    pending_days: Mapped[int] = mapped_column(Integer, default=0)
    expires_after_days: Mapped[int | None] = mapped_column(Integer)
    redeem_max_share: Mapped[Decimal] = mapped_column(Amount)
    transferable: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Store(Base):
    __tablename__ = "stores"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    partner: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
