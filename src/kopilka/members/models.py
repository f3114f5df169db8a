"""Members and their consent records.

Personal data (card number, phone, email, name, birth date) is encrypted at rest
(``kopilka.security.crypto``): the attributes read and write plain values, the columns hold
ciphertext. Exact look-ups and uniqueness go through the blind-index columns, which are
kept in step by attribute events whenever a value is set.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, Uuid, event
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk
from kopilka.security.crypto import EncryptedDate, EncryptedText, blind_index

CHANNELS = ("email", "sms", "push")
# attribute → kind of blind index kept in ``<attribute>_index``
INDEXED = {"card_number": "card", "phone": "phone", "email": "email", "name": "name"}
PERSONAL = ("card_number", "phone", "email", "name", "birth_date", "external_id")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("status IN ('active','blocked','erased')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    card_number: Mapped[str] = mapped_column(
        "card_number_enc", EncryptedText("members.card_number")
    )
    card_number_index: Mapped[str] = mapped_column(
        String(64), unique=True, info={"blind_index": ("card_number_enc", "card")}
    )
    phone: Mapped[str | None] = mapped_column("phone_enc", EncryptedText("members.phone"))
    phone_index: Mapped[str | None] = mapped_column(
        String(64), unique=True, info={"blind_index": ("phone_enc", "phone")}
    )
    email: Mapped[str | None] = mapped_column("email_enc", EncryptedText("members.email"))
    email_index: Mapped[str | None] = mapped_column(
        String(64), unique=True, info={"blind_index": ("email_enc", "email")}
    )
    name: Mapped[str | None] = mapped_column("name_enc", EncryptedText("members.name"))
    name_index: Mapped[str | None] = mapped_column(
        String(64), index=True, info={"blind_index": ("name_enc", "name")}
    )
    birth_date: Mapped[dt.date | None] = mapped_column(
        "birth_date_enc", EncryptedDate("members.birth_date")
    )
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    tier: Mapped[str | None] = mapped_column(String(32))
    # segment tags the rules look at (``when.member.tags``), and a fixed personal discount in
    # percent (``discount: {personal: true}``)
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    personal_discount: Mapped[Decimal | None] = mapped_column(Amount)
    status: Mapped[str] = mapped_column(String(16), default="active")
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


def _keep_index(attribute: str, kind: str) -> None:
    index_attr = f"{attribute}_index"

    @event.listens_for(getattr(Member, attribute), "set")
    def _set(target: Member, value: Any, _old: Any, _initiator: Any) -> None:
        setattr(target, index_attr, None if value is None else blind_index(kind, str(value)))


for _attribute, _kind in INDEXED.items():
    _keep_index(_attribute, _kind)


class ConsentRecord(Base):
    """Append-only: a member's consent per channel is the latest record for it."""

    __tablename__ = "member_consents"
    __table_args__ = (
        CheckConstraint("channel IN ('email','sms','push')", name="channel_known"),
        Index("ix_member_consents_member_channel", "member_id", "channel", "recorded_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    source: Mapped[str] = mapped_column(String(100))
    text_version: Mapped[str | None] = mapped_column(String(50))
    actor: Mapped[str | None] = mapped_column(String(200))
