"""The ``event_types`` and ``event_rules`` sections of the programme file.

Custom events are things a member does that are not purchases (clothes brought for
recycling, an empty jar returned, a check-in at an event). An event rule rewards one type
of event with points (fixed, or per unit of a numeric property), a personal coupon, or
both, under optional conditions and per-member limits.

This module imports nothing of ``kopilka.spec.program`` at run time: ``ProgramSpec`` refers to
these models, and the cross-field checks against the currencies (``validate_event_rules``)
take the spec as an argument.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from kopilka.core.money import MAX_AMOUNT, MAX_PRECISION, fits_precision

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

# An event type, as tills and shops send it: ``clothes_recycled``, ``event.checkin``.
EVENT_TYPE_RE = r"^[a-z][a-z0-9_.:-]{0,63}$"
# A property name of an event.
PROPERTY_RE = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"

EventType = Annotated[str, Field(pattern=EVENT_TYPE_RE)]
PropertyName = Annotated[str, Field(pattern=PROPERTY_RE)]
Points = Annotated[
    Decimal,
    Field(gt=0, lt=MAX_AMOUNT, max_digits=18, decimal_places=MAX_PRECISION, allow_inf_nan=False),
]
Bound = Annotated[Decimal, Field(max_digits=18, decimal_places=MAX_PRECISION, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        validate_by_alias=True,
        validate_by_name=True,
    )


def _equals_value(value: object) -> object:
    # YAML gives floats for ``equals: 1.5``; keep the decimal text, never a binary float
    # (comparisons are numeric whenever both sides read as numbers).
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    return value


class PropertyCondition(_Strict):
    """A condition on one property: numeric ``min``/``max`` (inclusive), or ``equals``."""

    min: Bound | None = None
    max: Bound | None = None
    equals: StrictBool | StrictInt | StrictStr | None = None

    @field_validator("equals", mode="before")
    @classmethod
    def _equals(cls, v: object) -> object:
        return _equals_value(v)

    @model_validator(mode="after")
    def _something(self) -> PropertyCondition:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give min, max or equals")
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("equals cannot be combined with min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is more than max")
        return self


class MemberCondition(_Strict):
    """The member's tier must be one of ``tiers``."""

    tiers: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(min_length=1)]


class PeriodCondition(_Strict):
    """Dates (inclusive) in the programme's time zone; either end may be open."""

    from_: Annotated[dt.date | None, Field(alias="from")] = None
    to: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> PeriodCondition:
        if self.from_ is None and self.to is None:
            raise ValueError("give from, to or both")
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError("to is before from")
        return self


class WhenSpec(_Strict):
    properties: Annotated[dict[PropertyName, PropertyCondition], Field(max_length=50)] = {}
    member: MemberCondition | None = None
    period: PeriodCondition | None = None


class PointsReward(_Strict):
    """``amount`` points, or ``amount`` per unit of the numeric property ``per_property``
    (rounded down to the currency's precision, at most ``max``)."""

    currency: Annotated[str, Field(min_length=1, max_length=16)]
    amount: Points
    per_property: PropertyName | None = None
    max: Points | None = None

    @model_validator(mode="after")
    def _max_needs_units(self) -> PointsReward:
        if self.max is not None and self.per_property is None:
            raise ValueError("max applies to a reward per_property only")
        return self


class CouponReward(_Strict):
    """A personal code of a coupon pool, named by the pool's name or id (checked when the
    event is recorded: pools live in the database)."""

    pool: Annotated[str, Field(min_length=1, max_length=200)]


class RewardSpec(_Strict):
    points: PointsReward | None = None
    coupon: CouponReward | None = None
    # A badge of the programme's ``badges`` (``kopilka.spec.challenges``), awarded by the
    # rule: badges "by rules".
    badge: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None

    @model_validator(mode="after")
    def _not_empty(self) -> RewardSpec:
        if self.points is None and self.coupon is None and self.badge is None:
            raise ValueError("a reward needs points, a coupon, a badge or some of them")
        return self


class LimitsSpec(_Strict):
    """Rewards of the rule per member: per calendar day, ISO week (Monday to Sunday) and
    month in the programme's time zone, and in total."""

    per_day: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    per_week: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    per_month: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    total: Annotated[int | None, Field(ge=1, le=1_000_000)] = None


class EventRuleSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    event: EventType
    when: WhenSpec = WhenSpec()
    reward: RewardSpec
    limits: LimitsSpec = LimitsSpec()


def validate_event_rules(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Checks across sections: currencies and their precision, unique rule names, and
    rule events among ``event_types`` when that list is given. Errors name the path."""
    errors: list[dict[str, Any]] = []

    def err(field: str, code: str, message: str) -> None:
        errors.append({"field": field, "code": code, "message": message})

    types = getattr(spec, "event_types", None)
    if types is not None:
        seen_types: set[str] = set()
        for i, t in enumerate(types):
            if t in seen_types:
                err(f"event_types[{i}]", "duplicate", f"event type {t!r} is listed twice")
            seen_types.add(t)
    names: set[str] = set()
    for i, rule in enumerate(spec.event_rules):
        at = f"event_rules[{i}]"
        if rule.name in names:
            err(f"{at}.name", "duplicate", f"another event rule is named {rule.name!r}")
        names.add(rule.name)
        if types is not None and rule.event not in types:
            err(f"{at}.event", "unknown_event_type", f"{rule.event!r} is not in event_types")
        points = rule.reward.points
        if points is None:
            continue
        cur = spec.currency(points.currency)
        if cur is None:
            err(
                f"{at}.reward.points.currency",
                "unknown_currency",
                f"no currency {points.currency!r} in currencies",
            )
            continue
        for name in ("amount", "max"):
            value = getattr(points, name)
            if value is not None and not fits_precision(value, cur.precision):
                err(
                    f"{at}.reward.points.{name}",
                    "precision",
                    f"{cur.code} has {cur.precision} decimal places; {value} has more",
                )
    return errors
