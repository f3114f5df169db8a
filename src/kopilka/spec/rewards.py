"""The ``rewards:`` section of the programme file (issue 22): the catalogue of what members
exchange points or stickers for.

A reward costs an amount of one currency (``cost``) and gives either a product at a token
price at the till (``gives: {sku, price}``: a receipt line with ``"reward": CODE``) or one
personal code of a coupon pool (``gives: {coupon_pool}``: claimed in the app or by staff).
``stock`` limits the units (null: unlimited), ``available`` the dates it can be had,
``per_member`` how many one member may have. ``docs/rewards.md`` describes it;
``rewards_json_schema()`` is its JSON Schema (``docs/rewards.schema.json``).

As ``kopilka.spec.referrals``, it imports ``ProgramSpec`` only for type checking; the
checks against the rest of the programme (the cost's currency and its precision) are in
``validate_rewards``, called by ``kopilka.program.service.validate_program``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import models_json_schema

from kopilka.core.money import MAX_AMOUNT, MAX_PRECISION, fits_precision

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

REWARD_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Points = Annotated[
    Decimal,
    Field(gt=0, lt=MAX_AMOUNT, max_digits=18, decimal_places=MAX_PRECISION, allow_inf_nan=False),
]
Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]


class _Strict(BaseModel):
    # ``from`` is a Python keyword: ``from_`` with the alias ``from`` (as in referrals)
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        validate_by_alias=True,
        validate_by_name=False,
    )


class LocalText(_Strict):
    """A text in Russian and, optionally, English (the app shows ``ru`` when ``en`` is
    missing)."""

    ru: Annotated[str, Field(min_length=1, max_length=300)]
    en: Annotated[str | None, Field(min_length=1, max_length=300)] = None

    def get(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.ru


class RewardCost(_Strict):
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    amount: Points


class RewardGives(_Strict):
    """A product at a token price at the till (``sku`` and ``price``), or one code of a
    coupon pool (``coupon_pool``: its name or id, checked when claimed: pools live in the
    database)."""

    sku: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    price: Money | None = None
    coupon_pool: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @model_validator(mode="after")
    def _product_or_coupon(self) -> RewardGives:
        product = self.sku is not None or self.price is not None
        if self.coupon_pool is not None and product:
            raise ValueError("give sku and price, or coupon_pool, not both")
        if self.coupon_pool is None and (self.sku is None or self.price is None):
            raise ValueError("give sku and price (a product at the till), or coupon_pool")
        return self

    @property
    def at_till(self) -> bool:
        return self.sku is not None


class Availability(_Strict):
    """The days (programme's time zone, both included) a reward can be had; either end
    open."""

    from_: Annotated[dt.date | None, Field(alias="from")] = None
    to: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> Availability:
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self

    def holds_on(self, day: dt.date) -> bool:
        return (self.from_ is None or self.from_ <= day) and (self.to is None or day <= self.to)


class RewardSpec(_Strict):
    code: Annotated[str, Field(pattern=REWARD_RE)]
    name: LocalText
    description: LocalText | None = None
    image: Annotated[str | None, Field(max_length=500)] = None
    cost: RewardCost
    gives: RewardGives
    stock: Annotated[int | None, Field(ge=0, le=100_000_000)] = None  # None: unlimited
    available: Availability = Availability()
    per_member: Annotated[int | None, Field(ge=1, le=1_000_000)] = None  # None: no limit


def validate_rewards(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Checks across sections: codes unique, each cost's currency one of the programme's
    and its amount within that currency's precision. Errors name the path
    (``rewards[0].cost.currency``)."""
    errors: list[dict[str, Any]] = []

    def err(field: str, code: str, message: str) -> None:
        errors.append({"field": field, "code": code, "message": message})

    seen: dict[str, int] = {}
    for i, r in enumerate(spec.rewards):
        if r.code in seen:
            err(
                f"rewards[{i}].code",
                "duplicate",
                f"reward {r.code!r} is also rewards[{seen[r.code]}]",
            )
        seen.setdefault(r.code, i)
        cur = spec.currency(r.cost.currency)
        if cur is None:
            err(
                f"rewards[{i}].cost.currency",
                "unknown_currency",
                f"no currency {r.cost.currency!r}",
            )
        elif not fits_precision(r.cost.amount, cur.precision):
            err(
                f"rewards[{i}].cost.amount",
                "precision",
                f"{cur.code} has {cur.precision} decimal places; {r.cost.amount} has more",
            )
    return errors


def rewards_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``rewards:`` section (``docs/rewards.schema.json``)."""
    refs, defs = models_json_schema([(RewardSpec, "validation")], by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kopilka rewards",
        "type": "object",
        "properties": {"rewards": {"type": "array", "items": refs[(RewardSpec, "validation")]}},
        **defs,
    }
