"""Purchases, their lines and the points per line, and returns."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

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

STATUSES = ("held", "confirmed", "cancelled", "released")


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("store", "external_id"),
        CheckConstraint(
            "status IN ('held','confirmed','cancelled','released')", name="status_known"
        ),
        CheckConstraint("channel IN ('pos','online','app')", name="channel_known"),
        Index("ix_purchases_member", "member_id", "occurred_at"),
        Index("ix_purchases_occurred_at", "occurred_at"),
        Index("ix_purchases_hold", "status", "hold_expires_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    store: Mapped[str] = mapped_column(String(64), ForeignKey("stores.code"))
    external_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(8))
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    request_hash: Mapped[str] = mapped_column(String(64))
    program_version: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[Decimal] = mapped_column(Amount)
    discount: Mapped[Decimal] = mapped_column(Amount)
    total_due: Mapped[Decimal] = mapped_column(Amount)
    redeem_currency: Mapped[str | None] = mapped_column(String(16))
    redeemed: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    redeemed_value: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    hold_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    receipt_number: Mapped[str | None] = mapped_column(String(100))
    # the figures answered to the caller (lines, earned, applied rules), for replays
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the keyed digest of the payment card's fingerprint the till sent (``payment``)
    payment_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class PurchaseLine(Base):
    __tablename__ = "purchase_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_pos"),
        CheckConstraint("total_due >= 0", name="total_due_nonneg"),
        CheckConstraint("discount >= 0 AND discount <= amount", name="discount_range"),
    )

    purchase_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("purchases.id"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[Decimal] = mapped_column(Amount)
    unit_price: Mapped[Decimal] = mapped_column(Amount)
    amount: Mapped[Decimal] = mapped_column(Amount)
    discount: Mapped[Decimal] = mapped_column(Amount)
    redeemed: Mapped[Decimal] = mapped_column(Amount)  # points of the redeem currency
    redeemed_value: Mapped[Decimal] = mapped_column(Amount)  # their money value
    total_due: Mapped[Decimal] = mapped_column(Amount)


class LineEarning(Base):
    """Points earned on one line in one currency."""

    __tablename__ = "purchase_line_earnings"

    purchase_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("purchases.id"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Amount)


class PurchaseReturn(Base):
    __tablename__ = "purchase_returns"
    __table_args__ = (UniqueConstraint("purchase_id", "external_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    purchase_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("purchases.id"))
    external_id: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    refund_due: Mapped[Decimal] = mapped_column(Amount)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    created_by: Mapped[str] = mapped_column(String(200))


class ReturnLine(Base):
    __tablename__ = "purchase_return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_pos"),)

    return_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("purchase_returns.id"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("purchases.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    refund: Mapped[Decimal] = mapped_column(Amount)
    points_restored: Mapped[Decimal] = mapped_column(Amount)
