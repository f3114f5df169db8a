"""What crosses the API of the member app."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.ledger.schemas import BalanceOut
from kopilka.tiers.schemas import TierProgressOut


class CodeIn(BaseModel):
    """Ask for a sign-in code: exactly one of phone or email."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Annotated[str | None, Field(min_length=3, max_length=32)] = None
    email: Annotated[str | None, Field(min_length=3, max_length=320)] = None
    lang: Literal["en", "ru"] | None = None

    @model_validator(mode="after")
    def _one(self) -> CodeIn:
        if (self.phone is None) == (self.email is None):
            raise ValueError("give exactly one of phone, email")
        return self


class CodeOut(BaseModel):
    challenge: uuid.UUID
    expires_at: dt.datetime
    channel: Literal["sms", "email"]
    sent_to: str


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    challenge: uuid.UUID
    code: Annotated[str, Field(min_length=1, max_length=12)]


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: Annotated[str, Field(min_length=1, max_length=200)]


class CardParams(BaseModel):
    """What a device needs to compute its rotating card code offline."""

    device: str
    secret: str
    step_seconds: int
    digits: int
    algorithm: str


class DeviceOut(BaseModel):
    id: uuid.UUID
    label: str
    signed_in_by: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    current: bool


class SignedIn(BaseModel):
    member_id: uuid.UUID
    device: DeviceOut
    card: CardParams
    csrf_token: str


class JoinCodeIn(BaseModel):
    """Ask for a code to join from an invitation: the phone and the inviter's code."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Annotated[str, Field(min_length=3, max_length=32)]
    referral_code: Annotated[str, Field(min_length=4, max_length=16)]
    lang: Literal["en", "ru"] | None = None


class JoinIn(BaseModel):
    """Join with the code: the same phone and referral code, and a name if given."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    challenge: uuid.UUID
    code: Annotated[str, Field(min_length=1, max_length=12)]
    phone: Annotated[str, Field(min_length=3, max_length=32)]
    referral_code: Annotated[str, Field(min_length=4, max_length=16)]
    name: Annotated[str | None, Field(max_length=200)] = None


class JoinedOut(SignedIn):
    """Signed in; ``joined``: a new member enrolled with the referral code, or false when
    the phone was a member's already (signed in as them, no referral)."""

    joined: bool


class CardOut(BaseModel):
    card_number: str
    card: CardParams
    server_time: dt.datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]


class ConsentsIn(BaseModel):
    """Consent given or withdrawn in the app, per channel (at least one)."""

    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    sms: bool | None = None
    push: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ConsentsIn:
        if self.email is None and self.sms is None and self.push is None:
            raise ValueError("give at least one of email, sms, push")
        return self


class ConsentsOut(BaseModel):
    current: dict[str, bool]


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: Annotated[str, Field(min_length=1, max_length=200)]
    auth: Annotated[str, Field(min_length=1, max_length=100)]


class SubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()`` (``expirationTime`` is ignored)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, Field(min_length=10, max_length=2000)]
    keys: PushKeys
    lang: Literal["en", "ru"] | None = None


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, Field(min_length=10, max_length=2000)]


class PublicKeyOut(BaseModel):
    public_key: str


class AppLinkOut(BaseModel):
    url: str
    expires_at: dt.datetime


class SignedOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    signed_out: Literal[True]


class MeMemberOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    card_number: str
    name: str | None
    phone: str | None
    email: str | None
    tier: str | None
    status: Literal["active", "blocked", "erased"]
    referral_code: str | None


class MeBalanceOut(BalanceOut):
    """A balance with its currency's ``name`` as the programme gives it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


class MeOut(BaseModel):
    """The member's profile, balances (``main_currency`` first), consents per channel and
    progress to the next tier (null without tiers), as of ``as_of``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    member: MeMemberOut
    balances: list[MeBalanceOut]
    main_currency: str
    consents: dict[str, bool]
    tier_progress: TierProgressOut | None
    as_of: str


class SubscribedOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    created_at: str


class UnsubscribedOut(BaseModel):
    """``removed``: how many subscriptions were forgotten (0 or 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    removed: int
