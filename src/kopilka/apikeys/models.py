"""API keys: only a SHA-256 of the key is stored; the key is shown once."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Base, UTCDateTime, now, uuid_pk

ROLES = ("admin", "manager", "analyst", "cashier", "partner")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin','manager','analyst','cashier','partner')", name="role_known"
        ),
        CheckConstraint("role <> 'cashier' OR store_code IS NOT NULL", name="cashier_has_store"),
        CheckConstraint(
            "role <> 'partner' OR partner_code IS NOT NULL", name="partner_has_partner"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    store_code: Mapped[str | None] = mapped_column(String(64))
    partner_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Rotation: the key that replaces this one (this one stays valid for a grace period).
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by: Mapped[str | None] = mapped_column(String(200))

    def status(self, at: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        if self.replaced_by is not None:
            return "rotating"
        return "active"
