"""Tables of the member app: devices (sessions with their card-code secrets), sign-in
codes, the codes that enrol a new member from an invitation, one-time app links, web-push
subscriptions, the VAPID key pair and the push log.

Secrets are never stored in a form that lets someone who reads the database sign in or
show a member's card: session tokens, sign-in codes and link tokens are kept as hashes;
the card-code secrets, the VAPID private key and the push subscriptions (which are
credentials to write to a member's phone) are encrypted at rest like personal data
(``kopilka.security.crypto``), so ``kopilka keys rotate-data`` re-encrypts them too.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Base, UTCDateTime, now, uuid_pk
from kopilka.security.crypto import EncryptedText


class MemberDevice(Base):
    """A signed-in device: its session and the secret its rotating card code comes from.

    ``card_no`` is the public first part of every card code the device shows (ten digits,
    unique), so the till's code names the device whose secret checks the rest.
    ``last_code_step`` is the latest time step of a code accepted at a till: a code of an
    earlier step (a screenshot of an old code) is refused from then on."""

    __tablename__ = "member_devices"
    __table_args__ = (Index("ix_member_devices_member", "member_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_no: Mapped[str] = mapped_column(String(10), unique=True)
    card_secret: Mapped[str] = mapped_column(EncryptedText("member_devices.card_secret"))
    last_code_step: Mapped[int] = mapped_column(BigInteger, default=0)
    label: Mapped[str] = mapped_column(String(100))
    signed_in_by: Mapped[str] = mapped_column(String(8))  # "code" | "link"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SignInCode(Base):
    """A one-time sign-in code sent to a member's phone or email (kept as an HMAC)."""

    __tablename__ = "member_sign_in_codes"
    __table_args__ = (Index("ix_member_sign_in_codes_member", "member_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(8))  # "sms" | "email"
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class JoinCode(Base):
    """A one-time code sent to a phone that belongs to no member, to enrol it from an
    invitation (``/app/r/{code}``). Only an HMAC of the challenge, the phone and the code
    is kept: the phone is sent again with the code, and nothing personal stays here."""

    __tablename__ = "member_join_codes"

    id: Mapped[uuid.UUID] = uuid_pk()
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AppLink(Base):
    """A one-time link into the app, issued by staff (the till shows it as a QR code)."""

    __tablename__ = "member_app_links"
    __table_args__ = (Index("ix_member_app_links_member", "member_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PushSubscription(Base):
    """A browser's Web Push subscription (endpoint and keys encrypted at rest; the
    endpoint is found again, and kept unique, through its blind index)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("member_devices.id"), index=True
    )
    endpoint: Mapped[str] = mapped_column(EncryptedText("push_subscriptions.endpoint"))
    endpoint_index: Mapped[str] = mapped_column(
        String(64), unique=True, info={"blind_index": ("endpoint", "push_endpoint")}
    )
    p256dh: Mapped[str] = mapped_column(EncryptedText("push_subscriptions.p256dh"))
    auth: Mapped[str] = mapped_column(EncryptedText("push_subscriptions.auth"))
    lang: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class VapidKey(Base):
    """The application server's key pair for Web Push (one row, made on first use)."""

    __tablename__ = "vapid_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    private_pem: Mapped[str] = mapped_column(EncryptedText("vapid_keys.private_pem"))
    public_key: Mapped[str] = mapped_column(String(100))  # base64url, uncompressed point
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class PushNotice(Base):
    """A domain event the push job has handled (so each is pushed at most once)."""

    __tablename__ = "push_notices"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    handled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    sent: Mapped[int] = mapped_column(Integer, default=0)
