"""The ``challenges:`` and ``badges:`` sections of the programme file (issue 22).

A challenge is a goal over what a member does (receipts, money paid, distinct days or
categories, units of given SKUs, custom events, friends who qualified) within a period (fixed
dates; every day, week or month in the programme's time zone; N days from the member's
opt-in), with a reward on completion (points of any currency, a coupon of a pool, a badge),
held for ``hold_days`` so that a return can take it back. Ladders (``steps``) reward each
target reached; streaks (``streak``) ask for the goal in N consecutive days, weeks or months
with ``grace`` misses forgiven. ``docs/challenges.md`` describes the language;
``challenges_json_schema()`` is its JSON Schema (``docs/challenges.schema.json``).

Like ``kopilka.spec.referrals`` it imports ``ProgramSpec`` only for type checking; the
checks against the rest of the programme (currencies and their precision, stores, tiers,
event types, badges) are in ``validate_challenges``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import models_json_schema

from kopilka.core.money import MAX_AMOUNT, MAX_PRECISION, fits_precision

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

CHALLENGE_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
BADGE_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
STORE_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
EVENT_TYPE_RE = r"^[a-z][a-z0-9_.:-]{0,63}$"

Points = Annotated[
    Decimal,
    Field(gt=0, lt=MAX_AMOUNT, max_digits=18, decimal_places=MAX_PRECISION, allow_inf_nan=False),
]
Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
# A goal's target: a count, or money (``paid``), or units (``units``: quantities).
Target = Annotated[
    Decimal, Field(gt=0, max_digits=15, decimal_places=3, le=Decimal(10**9), allow_inf_nan=False)
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]

Counted = Literal["purchases", "paid", "days", "categories", "units", "events", "referrals"]
# What each kind of goal counts from: receipts, custom events, qualified friends.
FROM_RECEIPTS = ("purchases", "paid", "days", "categories", "units")
DISTINCT = ("days", "categories")
Every = Literal["day", "week", "month"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        validate_by_alias=True,
        validate_by_name=False,
    )


class Localized(_Strict):
    """A text in Russian and English (the member app's languages)."""

    ru: Name
    en: Name


class LocalizedText(_Strict):
    ru: Text
    en: Text


class LinesWhere(_Strict):
    """Receipt lines that count: of one of ``skus`` or of one of ``categories`` (either
    list matches; both absent: every line)."""

    skus: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)]
        | None
    ) = None
    categories: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)]
        | None
    ) = None


class WhereSpec(_Strict):
    """What counts towards a goal. For receipts: ``lines`` (only those lines count, and a
    receipt without one does not count), ``min_receipt`` (the receipt's money paid, after
    discounts and points), ``stores``, ``channels``. For ``count: events``: ``event_type``
    (required there)."""

    lines: LinesWhere | None = None
    min_receipt: Money | None = None
    stores: Annotated[list[Annotated[str, Field(pattern=STORE_RE)]], Field(min_length=1)] | None = (
        None
    )
    channels: Annotated[list[Literal["pos", "online", "app"]], Field(min_length=1)] | None = None
    event_type: Annotated[str | None, Field(pattern=EVENT_TYPE_RE)] = None


class GoalSpec(_Strict):
    """``count``: what is counted; ``target``: how much completes the challenge (with
    ``steps``, the last step's target is the goal's; with ``streak``, what each day, week or
    month needs, default 1)."""

    count: Counted
    target: Target | None = None
    where: WhereSpec = WhereSpec()

    @model_validator(mode="after")
    def _fits(self) -> GoalSpec:
        w = self.where
        receipts = self.count in FROM_RECEIPTS
        if self.count == "events" and w.event_type is None:
            raise ValueError("count: events needs where.event_type")
        if not receipts and (w.lines or w.min_receipt or w.stores or w.channels):
            raise ValueError(
                f"count: {self.count} takes no receipt conditions (where.event_type only)"
            )
        if self.count != "events" and w.event_type is not None:
            raise ValueError("where.event_type applies to count: events only")
        if (
            self.target is not None
            and self.count not in ("paid", "units")
            and self.target != self.target.to_integral_value()
        ):
            raise ValueError(f"count: {self.count} needs a whole target")
        return self


class PeriodSpec(_Strict):
    """One of: ``every`` (day, week Monday to Sunday, month: in the programme's time zone;
    a new challenge each time), ``from``/``to`` (inclusive dates; either may be open), or
    ``days`` (N days from the member's opt-in; ``join: opt_in`` only)."""

    every: Every | None = None
    from_: Annotated[dt.date | None, Field(alias="from")] = None
    to: dt.date | None = None
    days: Annotated[int | None, Field(ge=1, le=3650)] = None

    @model_validator(mode="after")
    def _one_kind(self) -> PeriodSpec:
        fixed = self.from_ is not None or self.to is not None
        kinds = sum((self.every is not None, fixed, self.days is not None))
        if kinds != 1:
            raise ValueError("give one of: every, from/to, days")
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError(f"to ({self.to}) is before from ({self.from_})")
        return self


class RewardSpec(_Strict):
    """Any of: points (``currency`` and ``amount``; stickers are a currency too), a
    personal coupon of ``coupon_pool`` (a pool's name or id), a ``badge``. ``hold_days``:
    the reward stays pending that long after the completing receipt, and a return or
    cancel that undoes the completion meanwhile takes it back."""

    currency: Annotated[str | None, Field(min_length=1, max_length=16)] = None
    amount: Points | None = None
    coupon_pool: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    badge: Annotated[str | None, Field(pattern=BADGE_RE)] = None
    hold_days: Annotated[int, Field(ge=0, le=365)] = 0

    @model_validator(mode="after")
    def _something(self) -> RewardSpec:
        if (self.currency is None) != (self.amount is None):
            raise ValueError("points need both currency and amount")
        if self.currency is None and self.coupon_pool is None and self.badge is None:
            raise ValueError("a reward needs points (currency and amount), coupon_pool or badge")
        return self


class StepSpec(_Strict):
    target: Target
    reward: RewardSpec | None = None


class StreakSpec(_Strict):
    """The goal met in ``length`` consecutive days, weeks or months (``every``), with at
    most ``grace`` of them missed in between (a missed one does not count towards the
    length)."""

    every: Every = "week"
    length: Annotated[int, Field(ge=2, le=366)]
    grace: Annotated[int, Field(ge=0, le=30)] = 0


class AudienceSpec(_Strict):
    """Members who take part: of one of ``tiers`` and with one of ``tags`` (each list,
    when given, must match)."""

    tiers: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(min_length=1)]
        | None
    ) = None
    tags: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)]
        | None
    ) = None


class ChallengeSpec(_Strict):
    code: Annotated[str, Field(pattern=CHALLENGE_RE)]
    name: Localized
    description: LocalizedText | None = None
    goal: GoalSpec
    # None: one challenge for as long as the programme has it (a streak's usual form).
    period: PeriodSpec | None = None
    join: Literal["auto", "opt_in"] = "auto"
    audience: AudienceSpec | None = None
    reward: RewardSpec | None = None
    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=20)] | None = None
    streak: StreakSpec | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChallengeSpec:
        if self.steps is not None:
            if self.reward is not None:
                raise ValueError("give reward, or steps with a reward each, not both")
            targets = [s.target for s in self.steps]
            if any(b <= a for a, b in itertools.pairwise(targets)):
                raise ValueError("steps' targets must increase")
            if self.goal.target is not None and self.goal.target != targets[-1]:
                raise ValueError("goal.target must be the last step's target (or left out)")
            if self.streak is not None:
                raise ValueError("a streak has no steps")
        elif self.streak is None and self.goal.target is None:
            raise ValueError("goal.target is missing")
        if self.streak is not None and self.goal.count in ("days", "categories"):
            raise ValueError("a streak counts purchases, paid, units, events or referrals")
        if self.period is not None and self.period.days is not None and self.join != "opt_in":
            raise ValueError("period.days counts from the member's opt-in: join: opt_in")
        if self.streak is not None and self.period is not None and self.period.every is not None:
            raise ValueError(
                "a streak's period is from/to, days or none (streak.every sets its units)"
            )
        return self

    def ladder(self) -> list[tuple[Decimal, RewardSpec | None]]:
        """``(target, reward)`` per step: one for a plain challenge or a streak (whose
        target is its length)."""
        if self.steps is not None:
            return [(s.target, s.reward) for s in self.steps]
        if self.streak is not None:
            return [(Decimal(self.streak.length), self.reward)]
        assert self.goal.target is not None
        return [(self.goal.target, self.reward)]

    def final_target(self) -> Decimal:
        return self.ladder()[-1][0]

    def unit_target(self) -> Decimal:
        """What one unit of a streak needs."""
        return self.goal.target if self.goal.target is not None else Decimal(1)


class BadgeSpec(_Strict):
    code: Annotated[str, Field(pattern=BADGE_RE)]
    name: Localized
    description: LocalizedText | None = None
    # An absolute URL, or a path under the member app's static files (``img/coffee.svg``).
    image: Annotated[
        str | None,
        Field(min_length=1, max_length=500, pattern=r"^(https?://\S+|[A-Za-z0-9_./-]+)$"),
    ] = None


def _rewards(c: ChallengeSpec, at: str) -> list[tuple[str, RewardSpec]]:
    if c.steps is not None:
        return [(f"{at}.steps[{j}].reward", s.reward) for j, s in enumerate(c.steps) if s.reward]
    return [(f"{at}.reward", c.reward)] if c.reward is not None else []


def validate_challenges(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Checks across sections: unique codes; every reward's badge among ``badges``, its
    currency among the programme's (and the amount in its precision); stores, tiers and
    event types that exist; an event rule's badge among ``badges``. Errors name the path.
    Coupon pools live in the database: a pool is looked for when a reward is given (one
    that cannot issue a code is audited, ``challenge.coupon_not_issued``)."""
    errors: list[dict[str, Any]] = []

    def err(field: str, code: str, message: str) -> None:
        errors.append({"field": field, "code": code, "message": message})

    badges: set[str] = set()
    for i, b in enumerate(spec.badges):
        if b.code in badges:
            err(f"badges[{i}].code", "duplicate", f"badge {b.code!r} is listed twice")
        badges.add(b.code)
    stores = {s.code for s in spec.stores}
    tiers = {t.code for t in spec.tiers.levels} if spec.tiers is not None else set()
    codes: set[str] = set()
    for i, c in enumerate(spec.challenges):
        at = f"challenges[{i}]"
        if c.code in codes:
            err(f"{at}.code", "duplicate", f"challenge {c.code!r} is listed twice")
        codes.add(c.code)
        for j, store in enumerate(c.goal.where.stores or []):
            if store not in stores:
                err(f"{at}.goal.where.stores[{j}]", "unknown_store", f"no store {store!r}")
        et = c.goal.where.event_type
        if et is not None and spec.event_types is not None and et not in spec.event_types:
            err(
                f"{at}.goal.where.event_type", "unknown_event_type", f"{et!r} is not in event_types"
            )
        if c.audience is not None:
            for j, tier in enumerate(c.audience.tiers or []):
                if tier not in tiers:
                    err(f"{at}.audience.tiers[{j}]", "unknown_tier", f"no tier {tier!r}")
        for path, reward in _rewards(c, at):
            if reward.badge is not None and reward.badge not in badges:
                err(f"{path}.badge", "unknown_badge", f"no badge {reward.badge!r} in badges")
            if reward.currency is None or reward.amount is None:
                continue
            cur = spec.currency(reward.currency)
            if cur is None:
                err(f"{path}.currency", "unknown_currency", f"no currency {reward.currency!r}")
            elif not fits_precision(reward.amount, cur.precision):
                err(
                    f"{path}.amount",
                    "precision",
                    f"{cur.code} has {cur.precision} decimal places; {reward.amount} has more",
                )
    for i, rule in enumerate(spec.event_rules):
        badge = rule.reward.badge
        if badge is not None and badge not in badges:
            err(f"event_rules[{i}].reward.badge", "unknown_badge", f"no badge {badge!r} in badges")
    return errors


def challenges_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``challenges:`` and ``badges:`` sections (published as
    ``docs/challenges.schema.json``; ``python -m scripts.json_schemas`` writes it)."""
    refs, defs = models_json_schema(
        [(ChallengeSpec, "validation"), (BadgeSpec, "validation")], by_alias=True
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kopilka challenges and badges",
        "type": "object",
        "properties": {
            "challenges": {"type": "array", "items": refs[(ChallengeSpec, "validation")]},
            "badges": {"type": "array", "items": refs[(BadgeSpec, "validation")]},
        },
        **defs,
    }
