"""The ``referrals:`` section of the programme file (issue 21).

A member invites a friend; when the friend's first qualifying receipt is final, the friend
and the referrer are rewarded. This module holds only the section's language: what a
reward is, what makes a receipt qualify, how long rewards are held, the limits, the dates,
the bonus, the review and the fraud thresholds. ``docs/referrals.md`` describes it;
``referrals_json_schema()`` is its JSON Schema (``docs/referrals.schema.json``).

Like ``kopilka.spec.custom_events`` it imports ``ProgramSpec`` only for type checking:
``kopilka.spec.program`` refers to these models, and the checks against the rest of the
programme (currencies and their precision, store codes) are in ``validate_referrals``,
called by ``kopilka.program.service.validate_program``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from kopilka.core.money import MAX_AMOUNT, MAX_PRECISION, fits_precision

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

# What ``kopilka.spec.program`` accepts as a store code and a receipt's channel.
STORE_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
Channel = Literal["pos", "online", "app"]
# A domain name as an email address has it after the ``@`` (lowered when read): labels of
# letters, digits and hyphens, at least two of them.
DOMAIN_RE = (
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)

Points = Annotated[
    Decimal,
    Field(gt=0, lt=MAX_AMOUNT, max_digits=18, decimal_places=MAX_PRECISION, allow_inf_nan=False),
]
# Money of a receipt, as ``kopilka.purchases`` takes it (two decimal places).
Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]


class _Strict(BaseModel):
    # ``from`` is a Python keyword: the field is ``from_`` with the alias ``from``, read and
    # written (export, the stored document) by the alias only, so that ``from_:`` in a
    # file is an unknown key like any other.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        validate_by_alias=True,
        validate_by_name=False,
    )


class ReferralReward(_Strict):
    """Points (``currency`` and ``amount``) or one personal code of a coupon pool
    (``coupon_pool``: the pool's name or id; pools live in the database, so the name is
    checked when the reward is given, not here)."""

    # The same rule for the JSON Schema; a key given as null counts as absent (an exported
    # programme writes every key).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["currency", "amount"],
                    "properties": {
                        "currency": {"type": "string"},
                        "amount": {"not": {"type": "null"}},
                        "coupon_pool": {"type": "null"},
                    },
                },
                {
                    "required": ["coupon_pool"],
                    "properties": {
                        "coupon_pool": {"type": "string"},
                        "currency": {"type": "null"},
                        "amount": {"type": "null"},
                    },
                },
            ]
        }
    )

    currency: Annotated[str | None, Field(min_length=1, max_length=16)] = None
    amount: Points | None = None
    coupon_pool: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @model_validator(mode="after")
    def _points_or_coupon(self) -> ReferralReward:
        points = self.currency is not None or self.amount is not None
        if self.coupon_pool is not None and points:
            raise ValueError("give currency and amount, or coupon_pool, not both")
        if self.coupon_pool is None:
            if not points:
                raise ValueError("give currency and amount, or coupon_pool")
            if self.currency is None:
                raise ValueError("currency is missing: points need currency and amount")
            if self.amount is None:
                raise ValueError("amount is missing: points need currency and amount")
        return self


class QualifyingSpec(_Strict):
    """The friend's first receipt that counts: at least ``min_paid`` of money paid (the
    receipt's ``total_due``), within ``within_days`` of the friend's enrolment, at one of
    ``stores`` and through one of ``channels`` when those are given."""

    min_paid: Money = Decimal("0")
    within_days: Annotated[int, Field(ge=1, le=365)] = 30
    channels: Annotated[list[Channel] | None, Field(min_length=1)] = None
    stores: Annotated[list[Annotated[str, Field(pattern=STORE_RE)]] | None, Field(min_length=1)] = (
        None
    )


class LimitsSpec(_Strict):
    """Friends rewarded per referrer: per calendar month (programme's time zone) and in
    total. Beyond either, a referral is rejected (``limit_reached``)."""

    per_referrer_per_month: Count | None = None
    per_referrer_total: Count | None = None


class BonusSpec(_Strict):
    """An extra reward for the referrer at every ``every``-th rewarded friend."""

    every: Count
    reward: ReferralReward


class ReviewSpec(_Strict):
    """A flagged referral waits for a person; after ``auto_approve_after_days`` (when
    given) it is approved by the ``referrals.release`` job."""

    auto_approve_after_days: Annotated[int | None, Field(ge=1, le=365)] = None


class FraudSpec(_Strict):
    """Thresholds beyond which a referral is flagged for review (never rejected)."""

    max_friends_per_referrer_per_day: Count = 5
    max_enrolments_per_device: Count = 2
    device_window_hours: Annotated[int, Field(ge=1, le=24 * 365)] = 24
    max_enrolments_per_cashier_per_hour: Count = 10
    # Added to the built-in list of throw-away mail services.
    disposable_email_domains: Annotated[
        list[Annotated[str, Field(max_length=253, pattern=DOMAIN_RE)]], Field(max_length=10_000)
    ] = []

    @field_validator("disposable_email_domains")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        # Email addresses are compared lower-cased; ``Mailinator.COM`` means the same.
        return [d.lower() for d in v]


class ReferralsSpec(_Strict):
    """The ``referrals:`` section: at least one of the two rewards; everything else has a
    default (``docs/referrals.md``)."""

    friend_reward: ReferralReward | None = None
    referrer_reward: ReferralReward | None = None
    qualifying: QualifyingSpec = QualifyingSpec()
    # Rewards stay pending until the qualifying receipt can no longer be cancelled.
    hold_days: Annotated[int, Field(ge=0, le=365)] = 14
    limits: LimitsSpec = LimitsSpec()
    # Inclusive dates in the programme's time zone: enrolments outside are rejected
    # (``outside_dates``).
    from_: Annotated[dt.date | None, Field(alias="from")] = None
    to: dt.date | None = None
    bonus: BonusSpec | None = None
    review: ReviewSpec = ReviewSpec()
    fraud: FraudSpec = FraudSpec()

    @field_validator("to")
    @classmethod
    def _not_before_from(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("from_")  # absent when ``from`` itself is bad
        if v is not None and isinstance(start, dt.date) and v < start:
            raise ValueError(f"to ({v}) is before from ({start})")
        return v

    @model_validator(mode="after")
    def _some_reward(self) -> ReferralsSpec:
        if self.friend_reward is None and self.referrer_reward is None:
            raise ValueError("give friend_reward, referrer_reward or both")
        return self

    def rewards(self) -> list[tuple[str, ReferralReward]]:
        """Each reward given, with its path in the programme file."""
        out = [
            (f"referrals.{name}", reward)
            for name, reward in (
                ("friend_reward", self.friend_reward),
                ("referrer_reward", self.referrer_reward),
            )
            if reward is not None
        ]
        if self.bonus is not None:
            out.append(("referrals.bonus.reward", self.bonus.reward))
        return out


def validate_referrals(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Checks across sections: every reward's currency is one of the programme's and its
    amount fits that currency's precision; the qualifying stores are the programme's.
    Errors name the path (``referrals.friend_reward.currency``)."""
    errors: list[dict[str, Any]] = []
    section = spec.referrals
    if section is None:
        return errors

    def err(field: str, code: str, message: str) -> None:
        errors.append({"field": field, "code": code, "message": message})

    for at, reward in section.rewards():
        if reward.currency is None or reward.amount is None:
            continue  # a coupon
        cur = spec.currency(reward.currency)
        if cur is None:
            err(f"{at}.currency", "unknown_currency", f"no currency {reward.currency!r}")
        elif not fits_precision(reward.amount, cur.precision):
            err(
                f"{at}.amount",
                "precision",
                f"{cur.code} has {cur.precision} decimal places; {reward.amount} has more",
            )
    stores = {s.code for s in spec.stores}
    for j, code in enumerate(section.qualifying.stores or []):
        if code not in stores:
            err(f"referrals.qualifying.stores[{j}]", "unknown_store", f"no store {code!r}")
    return errors


def referrals_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``referrals:`` section (published as
    ``docs/referrals.schema.json``; ``python -m scripts.json_schemas`` writes it)."""
    refs, defs = models_json_schema([(ReferralsSpec, "validation")], by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kopilka referrals",
        "type": "object",
        "properties": {"referrals": refs[(ReferralsSpec, "validation")]},
        **defs,
    }
