"""What crosses the API for members."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def normalise_email(value: str) -> str:
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return info.normalized.lower()


def check_birth_date(v: dt.date | None) -> dt.date | None:
    if v is not None and (v.year < 1900 or v > dt.date.today()):  # noqa: DTZ011
        raise ValueError("birth date must be between 1900-01-01 and today")
    return v


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: bool | None = None
    sms: bool | None = None
    push: bool | None = None


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Annotated[str | None, Field(min_length=3, max_length=32)] = None
    email: Annotated[str | None, Field(max_length=320)] = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    birth_date: dt.date | None = None
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    referral_code: Annotated[str | None, Field(min_length=4, max_length=16)] = None
    consents: Consents | None = None
    consent_source: Annotated[str, Field(min_length=1, max_length=100)] = "api"
    consent_text_version: Annotated[str | None, Field(max_length=50)] = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else normalise_email(v)

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: dt.date | None) -> dt.date | None:
        return check_birth_date(v)


class MemberRef(BaseModel):
    """A member inside another request: exactly one of the keys."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = None
    card: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    phone: Annotated[str | None, Field(min_length=3, max_length=32)] = None
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    qr: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberRef:
        given = [k for k in ("id", "card", "phone", "external_id", "qr") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of id, card, phone, external_id, qr")
        return self


class MemberOut(BaseModel):
    id: uuid.UUID
    card_number: str
    phone: str | None
    email: str | None
    name: str | None
    birth_date: dt.date | None
    external_id: str | None
    tier: str | None
    status: str
    referral_code: str
    consents: dict[str, bool]
    created_at: dt.datetime
    tags: list[str] = []
    personal_discount: str | None = None  # percent, a decimal string


class MemberList(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class MemberUpdate(BaseModel):
    """Fields to change (absent: unchanged; null: cleared)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Annotated[str | None, Field(min_length=3, max_length=32)] = None
    email: Annotated[str | None, Field(max_length=320)] = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    birth_date: dt.date | None = None
    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    # segment tags for the rules (``when.member.tags``); [] or null clears them
    tags: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]] | None,
        Field(max_length=50),
    ] = None
    # a fixed personal discount in percent for ``discount: {personal: true}``; null clears
    personal_discount: Annotated[Decimal | None, Field(gt=0, le=100, decimal_places=2)] = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return sorted(set(v)) or None if v is not None else None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else normalise_email(v)

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: dt.date | None) -> dt.date | None:
        return check_birth_date(v)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "blocked"]
    reason: Annotated[str | None, Field(max_length=200)] = None


class ConsentsIn(BaseModel):
    """Consent given or withdrawn per channel, with where and under which text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: bool | None = None
    sms: bool | None = None
    push: bool | None = None
    source: Annotated[str, Field(min_length=1, max_length=100)]
    text_version: Annotated[str | None, Field(min_length=1, max_length=50)] = None

    @model_validator(mode="after")
    def _something(self) -> ConsentsIn:
        if self.email is None and self.sms is None and self.push is None:
            raise ValueError("give at least one of email, sms, push")
        if (self.email or self.sms or self.push) and not self.text_version:
            raise ValueError("text_version: say which consent text was agreed to")
        return self


class ConsentRecordOut(BaseModel):
    id: str
    channel: str
    granted: bool
    recorded_at: str
    source: str
    text_version: str | None
    actor: str | None


class ConsentHistory(BaseModel):
    current: dict[str, bool]
    history: list[ConsentRecordOut]


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str | None,
        Field(max_length=200, description="why (a ticket number; no personal data here)"),
    ] = None


class MemberExportProfile(MemberOut):
    """The profile as the API shows it, with who referred the member and when the
    record last changed or was erased."""

    referred_by: str | None
    updated_at: str
    erased_at: str | None


class MemberExportOut(BaseModel):
    """``GET /members/{id}/export``: everything Kopilka holds about a member, one JSON
    document (sent as a file). The sections of other parts are their API's answers:
    ``balances`` as ``BalanceOut``, ``ledger`` as ``LedgerItemOut``, ``purchases`` as
    ``PurchaseOut``, ``audit`` as ``AuditEntryOut`` (each in full, not paginated);
    ``other`` has a section per part of Kopilka that adds one (e.g. the member app's
    devices)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: Literal["kopilka.member-export/1"]
    exported_at: str
    member: MemberExportProfile
    consents: list[ConsentRecordOut]
    balances: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    purchases: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    other: dict[str, Any]
