"""The programme file (YAML): its schema, validated with errors that name the bad path.

Unknown keys are errors, never silently ignored. The sections whose language a domain owns
are the sibling modules (``kopilka.spec.rules``, ``.tiers``, ``.custom_events``,
``.referrals``); this module holds the whole file and everything else.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kopilka.core.money import MAX_AMOUNT, MAX_PRECISION, fits_precision
from kopilka.spec.challenges import BadgeSpec, ChallengeSpec
from kopilka.spec.custom_events import EventRuleSpec, EventType
from kopilka.spec.leaderboards import LeaderboardSpec
from kopilka.spec.referrals import ReferralsSpec
from kopilka.spec.rewards import RewardSpec
from kopilka.spec.tiers import TiersSpec

CODE_RE = r"^[A-Z][A-Z0-9_]{1,15}$"
STORE_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CurrencySpec(_Strict):
    code: Annotated[str, Field(pattern=CODE_RE)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    precision: Annotated[int, Field(ge=0, le=MAX_PRECISION)] = 2
    value: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=MAX_PRECISION)] = Decimal(
        "1.00"
    )
    pending_days: Annotated[int, Field(ge=0, le=3650)] = 0
    expires_after_days: Annotated[int | None, Field(ge=1, le=36500)] = None
    # the last day (programme's time zone) of every lot of the currency, whenever earned:
    # a sticker season's redemption window (with ``expires_after_days``: the earlier)
    expires_on: dt.date | None = None
    redeem_max_share: Annotated[Decimal, Field(ge=0, le=Decimal("0.99"), decimal_places=4)] = (
        Decimal("0.99")
    )
    transferable: bool = False
    # An adjustment of more than this (either sign) waits for a second person's approval
    # (``kopilka.adjustments``); None: every adjustment is posted at once. Whatever it
    # says, no adjustment is ever more than ``MAX_AMOUNT`` (the ledger's limit).
    adjust_approval_above: Annotated[
        Decimal | None,
        Field(gt=0, lt=MAX_AMOUNT, decimal_places=MAX_PRECISION, allow_inf_nan=False),
    ] = None

    @field_validator("adjust_approval_above")
    @classmethod
    def _ceiling_in_precision(cls, v: Decimal | None, info: ValidationInfo) -> Decimal | None:
        precision = info.data.get("precision")  # absent when the precision itself is bad
        if v is not None and isinstance(precision, int) and not fits_precision(v, precision):
            raise ValueError(f"{v} has more decimal places than the currency's {precision}")
        return v

    def needs_approval(self, amount: Decimal) -> bool:
        """Whether an adjustment of ``amount`` (signed) must wait for a second person."""
        ceiling = self.adjust_approval_above
        return ceiling is not None and abs(amount) > ceiling


class StoreSpec(_Strict):
    code: Annotated[str, Field(pattern=STORE_RE)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: str | None = None
    partner: Annotated[str | None, Field(pattern=STORE_RE)] = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            _check_timezone(v)
        return v


class TransferSpec(_Strict):
    enabled: bool = False
    max_amount: Annotated[Decimal | None, Field(gt=0)] = None
    daily_limit: Annotated[Decimal | None, Field(gt=0)] = None


class ClockSpec(_Strict):
    """How far from Kopilka's clock a receipt's or a custom event's ``occurred_at`` may
    be: an offline till sends its queue late, and a till's clock may run a little ahead.
    Anything else is refused (a receipt dated 2100 would keep its points pending until
    then); ``kopilka.program.service.check_occurred_at`` applies it."""

    max_replay_days: Annotated[int, Field(ge=0, le=3650)] = 30
    max_drift_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 10

    def refusal(self, at: dt.datetime, moment: dt.datetime) -> tuple[str, str] | None:
        """``(code, message)`` when ``at`` is not a plausible moment of a receipt sent at
        ``moment``, else None."""
        if at < moment - dt.timedelta(days=self.max_replay_days):
            return (
                "too_old",
                f"more than {self.max_replay_days} days ago: the programme accepts receipts "
                f"and events up to {self.max_replay_days} days old (clock.max_replay_days)",
            )
        if at > moment + dt.timedelta(minutes=self.max_drift_minutes):
            return (
                "in_the_future",
                f"more than {self.max_drift_minutes} minutes ahead of the server's clock "
                f"({moment.isoformat(timespec='seconds')}): check the till's clock and time "
                "zone (clock.max_drift_minutes)",
            )
        return None


class BrandingSpec(_Strict):
    app_name: Annotated[str | None, Field(max_length=60)] = None
    logo_url: Annotated[str | None, Field(max_length=500)] = None
    primary_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#1f6feb"


def _check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _refuse_repeated(what: str, codes: list[str]) -> None:
    """``ValueError`` naming the codes given more than once (sorted), if any."""
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ValueError(f"{what} codes must be unique; repeated: {', '.join(dupes)}")


class ProgramSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    base_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    timezone: str = "Europe/Moscow"
    default_phone_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "RU"
    hold_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 15
    clock: ClockSpec = ClockSpec()
    branding: BrandingSpec = BrandingSpec()
    currencies: Annotated[list[CurrencySpec], Field(min_length=1)]
    stores: list[StoreSpec] = []
    transfers: TransferSpec = TransferSpec()
    # Share of members held out as a control group (they earn nothing; reports measure the
    # programme's ROI against them); picked by ``kopilka.spec.control_group.in_control_group``.
    control_group_share: Annotated[Decimal, Field(ge=0, le=Decimal("0.5"), decimal_places=4)] = (
        Decimal(0)
    )
    # The rules engine owns the language of these two (``kopilka.spec.rules``).
    campaigns: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    tiers: TiersSpec | None = None
    # Custom events (``kopilka.spec.custom_events``): known types (None: any) and their rules.
    event_types: list[EventType] | None = None
    event_rules: list[EventRuleSpec] = []
    # Rewards for inviting a friend (``kopilka.spec.referrals``); None: no referral programme.
    referrals: ReferralsSpec | None = None
    # Leaderboards of members who opted in (``kopilka.spec.leaderboards``).
    leaderboards: list[LeaderboardSpec] = []
    # What members exchange points or stickers for (``kopilka.spec.rewards``).
    rewards: list[RewardSpec] = []

    def reward(self, code: str) -> RewardSpec | None:
        return next((r for r in self.rewards if r.code == code), None)

    # Challenges and badges (``kopilka.spec.challenges``).
    challenges: list[ChallengeSpec] = []
    badges: list[BadgeSpec] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        _check_timezone(v)
        return v

    @field_validator("default_phone_region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {v!r}")
        return v

    @field_validator("currencies")
    @classmethod
    def _unique_currencies(cls, v: list[CurrencySpec]) -> list[CurrencySpec]:
        _refuse_repeated("currency", [c.code for c in v])
        return v

    @field_validator("stores")
    @classmethod
    def _unique_stores(cls, v: list[StoreSpec]) -> list[StoreSpec]:
        _refuse_repeated("store", [s.code for s in v])
        return v

    @model_validator(mode="after")
    def _base_currency_apart(self) -> ProgramSpec:
        if self.currency(self.base_currency) is not None:
            raise ValueError(f"currency {self.base_currency} has the code of the base currency")
        return self

    def currency(self, code: str) -> CurrencySpec | None:
        return next((c for c in self.currencies if c.code == code), None)
