"""The rule language of the programme file and of the rules API, validated with paths.

A rule is a mapping: who it is (``key``, ``name``), when it applies (``when``: conditions on
the receipt and its lines, the member and the time), exactly one effect (``earn``,
``multiply``, ``discount``, ``reward``, ``redeem`` or ``exclude``), how it combines with
others (``priority``, ``stacking``, ``group``), what limits it (``caps``) and the campaign
it belongs to. Campaigns (``campaigns:`` of the programme) give rules a schedule and a
budget. ``docs/rules.md`` describes the language; ``rules_json_schema()`` is its JSON Schema.

The base form of the contract works as written::

    - name: Base earn
      earn: {currency: BONUS, percent: "5"}
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from kopilka.core.errors import field_error, validation_errors

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

KEY_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CAMPAIGN_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
HOUR_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
EFFECTS = ("earn", "multiply", "discount", "reward", "redeem", "exclude")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Channel = Literal["pos", "online", "app"]
Period = Literal["day", "week", "month", "year"]
Positive = Annotated[Decimal, Field(gt=0, max_digits=17, decimal_places=4)]
NonNegative = Annotated[Decimal, Field(ge=0, max_digits=17, decimal_places=4)]
Percent = Annotated[Decimal, Field(gt=0, le=100, decimal_places=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- conditions


class LinesCond(_Strict):
    """Which receipt lines the rule looks at and acts on. Every list is "any of"; a rule
    with a lines condition fires only if at least one line matches."""

    skus: Annotated[list[str], Field(min_length=1)] | None = None
    categories: Annotated[list[str], Field(min_length=1)] | None = None
    exclude_skus: list[str] = []
    exclude_categories: list[str] = []
    min_quantity: Positive | None = None  # of the matching lines together
    min_amount: Positive | None = None  # money of the matching lines together


class ReceiptCond(_Strict):
    min_amount: NonNegative | None = None  # the receipt's subtotal, before discounts
    max_amount: Positive | None = None
    min_quantity: Positive | None = None  # all lines' quantities together
    stores: Annotated[list[str], Field(min_length=1)] | None = None
    channels: Annotated[list[Channel], Field(min_length=1)] | None = None
    partners: Annotated[list[str], Field(min_length=1)] | None = None


class BirthdayCond(_Strict):
    days_before: Annotated[int, Field(ge=0, le=31)] = 0
    days_after: Annotated[int, Field(ge=0, le=31)] = 0


class MemberCond(_Strict):
    tiers: Annotated[list[str], Field(min_length=1)] | None = None
    tags: Annotated[list[str], Field(min_length=1)] | None = None  # any of the member's tags
    min_age: Annotated[int, Field(ge=0, le=150)] | None = None
    max_age: Annotated[int, Field(ge=0, le=150)] | None = None
    birthday: BirthdayCond | None = None  # the purchase falls in the birthday window
    min_days_since_joining: Annotated[int, Field(ge=0)] | None = None
    max_days_since_joining: Annotated[int, Field(ge=0)] | None = None
    first_purchase: bool | None = None  # true: no earlier purchase; false: at least one
    min_purchases: Annotated[int, Field(ge=0)] | None = None  # earlier purchases
    max_purchases: Annotated[int, Field(ge=0)] | None = None


class HoursCond(_Strict):
    """Local time of day in the programme's time zone; ``from`` inclusive, ``to`` exclusive;
    ``from`` after ``to`` wraps past midnight (22:00–02:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: Annotated[str, Field(alias="from", pattern=HOUR_RE)]
    end: Annotated[str, Field(alias="to", pattern=HOUR_RE)]


class TimeCond(_Strict):
    """Dates are local to the programme's time zone and inclusive at both ends."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: Annotated[dt.date | None, Field(alias="from")] = None
    end: Annotated[dt.date | None, Field(alias="to")] = None
    days_of_week: Annotated[list[Day], Field(min_length=1)] | None = None
    hours: HoursCond | None = None

    @model_validator(mode="after")
    def _order(self) -> TimeCond:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("'to' is before 'from'")
        return self


class When(_Strict):
    lines: LinesCond | None = None
    receipt: ReceiptCond | None = None
    member: MemberCond | None = None
    time: TimeCond | None = None


# ---------------------------------------------------------------------------- effects


class EarnEffect(_Strict):
    """Points of ``currency``: ``percent`` of the money paid on each matching line, or a
    fixed ``amount`` per receipt, per matching line or per unit of the matching lines, or
    ``amount`` per full ``every`` of money paid on the matching lines of the receipt
    together (stickers: one per full 300 ₽; a 650 ₽ receipt gives 2)."""

    currency: str
    percent: Percent | None = None
    amount: Positive | None = None
    per: Literal["receipt", "line", "unit"] = "receipt"
    # money: ``amount`` per full ``every`` paid on the matching lines, after discounts and
    # points redeemed (the money the rule's ``percent`` would count)
    every: Annotated[Decimal | None, Field(gt=0, max_digits=15, decimal_places=2)] = None

    @model_validator(mode="after")
    def _one(self) -> EarnEffect:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give exactly one of percent or amount")
        if self.every is not None and (self.amount is None or self.per != "receipt"):
            raise ValueError("every goes with amount, per receipt (the default)")
        return self


class MultiplyEffect(_Strict):
    """Multiplies the points the earn rules before it gave on the matching lines."""

    factor: Annotated[Decimal, Field(gt=1, le=100, decimal_places=4)]
    currency: str | None = None  # None: every currency earned


class LadderStep(_Strict):
    from_spend: NonNegative
    percent: Percent


class DiscountEffect(_Strict):
    """Money off: ``percent`` of each matching line, a fixed ``amount`` (per receipt, split
    across the matching lines in proportion; per line; per unit), the member's own
    ``personal`` discount, or a ``ladder`` that grows with the member's lifetime spend."""

    percent: Percent | None = None
    amount: Positive | None = None
    per: Literal["receipt", "line", "unit"] = "receipt"
    personal: Literal[True] | None = None
    ladder: Annotated[list[LadderStep], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> DiscountEffect:
        given = [x for x in (self.percent, self.amount, self.personal, self.ladder) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of percent, amount, personal or ladder")
        if self.ladder is not None:
            steps = [s.from_spend for s in self.ladder]
            if steps != sorted(set(steps)):
                raise ValueError("ladder steps must have strictly ascending from_spend")
        return self


class RewardEffect(_Strict):
    """A fixed grant of points once per receipt (a welcome or birthday gift, say)."""

    currency: str
    amount: Positive


class RedeemEffect(_Strict):
    """Changes the share of the receipt payable with ``currency`` (raise or lower the cap)."""

    currency: str
    max_share: Annotated[Decimal, Field(ge=0, le=Decimal("0.99"), decimal_places=4)]


class ExcludeEffect(_Strict):
    """The matching lines earn nothing and/or cannot be paid with points (tobacco, say)."""

    earning: bool = False
    redemption: bool = False

    @model_validator(mode="after")
    def _some(self) -> ExcludeEffect:
        if not (self.earning or self.redemption):
            raise ValueError("exclude from earning, from redemption or both")
        return self


class MemberCap(_Strict):
    amount: Positive
    period: Period


class Caps(_Strict):
    """Limits on what this rule gives, in its own unit (points of its currency, or money
    for a discount)."""

    per_receipt: Positive | None = None
    per_member: MemberCap | None = None


# ---------------------------------------------------------------------------- rule


class RuleSpec(_Strict):
    key: Annotated[str | None, Field(pattern=KEY_RE)] = None  # stable id; default from name
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str | None, Field(max_length=1000)] = None
    active: bool = True
    campaign: Annotated[str | None, Field(pattern=CAMPAIGN_RE)] = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    stacking: Literal["stackable", "exclusive", "best_of"] = "stackable"
    group: Annotated[str | None, Field(max_length=64)] = None  # best_of group
    when: When | None = None
    earn: EarnEffect | None = None
    multiply: MultiplyEffect | None = None
    discount: DiscountEffect | None = None
    reward: RewardEffect | None = None
    redeem: RedeemEffect | None = None
    exclude: ExcludeEffect | None = None
    caps: Caps | None = None

    @model_validator(mode="after")
    def _one_effect(self) -> RuleSpec:
        given = [e for e in EFFECTS if getattr(self, e) is not None]
        if len(given) != 1:
            raise ValueError(
                "a rule has exactly one effect: one of " + ", ".join(EFFECTS)
                if not given
                else f"a rule has exactly one effect, this one has {', '.join(given)}"
            )
        if self.caps is not None and given[0] in ("redeem", "exclude"):
            raise ValueError(f"caps do not apply to a {given[0]} rule")
        return self

    @property
    def effect(self) -> str:
        return next(e for e in EFFECTS if getattr(self, e) is not None)

    @property
    def rule_key(self) -> str:
        return self.key or slugify(self.name)


class BudgetSpec(_Strict):
    currency: str  # a points currency, or the base currency for discounts
    amount: Positive


class CampaignSpec(_Strict):
    """A named group of rules with a schedule and an optional budget. Its rules apply only
    while it runs; when the budget is spent its rules stop giving."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    code: Annotated[str, Field(pattern=CAMPAIGN_RE)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str | None, Field(max_length=1000)] = None
    active: bool = True
    starts_at: AwareDatetime | None = None  # RFC 3339 with an offset
    ends_at: AwareDatetime | None = None
    days_of_week: Annotated[list[Day], Field(min_length=1)] | None = None
    hours: HoursCond | None = None
    budget: BudgetSpec | None = None

    @model_validator(mode="after")
    def _order(self) -> CampaignSpec:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "i",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "-",
            "y",
            "-",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def slugify(name: str) -> str:
    """A rule's default key: its name in lower-case Latin letters, digits and dashes
    (Cyrillic transliterated): "Бонус на молочку" → "bonus-na-molochku"."""
    text = "".join(_CYRILLIC.get(c, c) for c in name.lower())
    ascii_name = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:64].strip("-")
    return slug or "rule"


# ---------------------------------------------------------------------------- validation


def parse_rules(raw: list[dict[str, Any]]) -> list[RuleSpec]:
    return [RuleSpec.model_validate(r) for r in raw]


def parse_campaigns(raw: list[dict[str, Any]]) -> list[CampaignSpec]:
    return [CampaignSpec.model_validate(c) for c in raw]


def _err(field: str, code: str, message: str) -> dict[str, Any]:
    return field_error(field, message, code)


def validate_rules(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Every error of the ``rules`` and ``campaigns`` of a programme, each naming its path
    (``rules[2].earn.currency``). Empty when the programme's rules are valid."""
    errors: list[dict[str, Any]] = []
    currencies = {c.code: c for c in spec.currencies}
    stores = {s.code for s in spec.stores}
    partners = {s.partner for s in spec.stores if s.partner}
    campaigns: dict[str, CampaignSpec] = {}
    for i, raw in enumerate(spec.campaigns):
        try:
            camp = CampaignSpec.model_validate(raw)
        except ValidationError as exc:
            errors += validation_errors(exc, f"campaigns[{i}]")
            continue
        if camp.code in campaigns:
            errors.append(_err(f"campaigns[{i}].code", "duplicate", f"{camp.code!r} repeated"))
        campaigns[camp.code] = camp
        if (
            camp.budget is not None
            and camp.budget.currency not in currencies
            and camp.budget.currency != spec.base_currency
        ):
            errors.append(
                _err(
                    f"campaigns[{i}].budget.currency",
                    "unknown_currency",
                    f"no currency {camp.budget.currency!r}",
                )
            )
    keys: dict[str, int] = {}
    for i, raw in enumerate(spec.rules):
        try:
            rule = RuleSpec.model_validate(raw)
        except ValidationError as exc:
            errors += validation_errors(exc, f"rules[{i}]")
            continue
        p = f"rules[{i}]"
        key = rule.rule_key
        if key in keys:
            errors.append(
                _err(
                    f"{p}.key" if rule.key else f"{p}.name",
                    "duplicate",
                    f"rule key {key!r} is also rules[{keys[key]}]'s; give each rule its own key",
                )
            )
        keys[key] = i
        unit: str | None = None
        for effect in ("earn", "multiply", "reward", "redeem"):
            part = getattr(rule, effect)
            code = getattr(part, "currency", None) if part is not None else None
            if code is None:
                continue
            unit = code
            if code not in currencies:
                errors.append(
                    _err(
                        f"{p}.{effect}.currency",
                        "unknown_currency",
                        f"no currency {code!r} in currencies",
                    )
                )
                continue
            precision = currencies[code].precision
            amount = getattr(part, "amount", None)
            if amount is not None and amount != round(amount, precision):
                errors.append(
                    _err(
                        f"{p}.{effect}.amount",
                        "precision",
                        f"{code} has {precision} decimal places",
                    )
                )
        if rule.discount is not None:
            unit = spec.base_currency
        w = rule.when
        if w is not None and w.receipt is not None:
            for j, s in enumerate(w.receipt.stores or []):
                if s not in stores:
                    errors.append(
                        _err(f"{p}.when.receipt.stores[{j}]", "unknown_store", f"no store {s!r}")
                    )
            for j, s in enumerate(w.receipt.partners or []):
                if s not in partners:
                    errors.append(
                        _err(
                            f"{p}.when.receipt.partners[{j}]",
                            "unknown_partner",
                            f"no store has partner {s!r}",
                        )
                    )
        if w is not None and w.member is not None:
            m = w.member
            if m.min_age is not None and m.max_age is not None and m.max_age < m.min_age:
                errors.append(_err(f"{p}.when.member.max_age", "range", "below min_age"))
            tiers = getattr(spec, "tiers", None)
            known = {lv.code for lv in tiers.levels} if tiers is not None else None
            for j, t in enumerate(m.tiers or []):
                if known is not None and t not in known:
                    errors.append(
                        _err(f"{p}.when.member.tiers[{j}]", "unknown_tier", f"no tier {t!r}")
                    )
        if rule.campaign is not None:
            camp_ = campaigns.get(rule.campaign)
            if camp_ is None:
                errors.append(
                    _err(f"{p}.campaign", "unknown_campaign", f"no campaign {rule.campaign!r}")
                )
            elif camp_.budget is not None and unit is not None and unit != camp_.budget.currency:
                errors.append(
                    _err(
                        f"{p}.campaign",
                        "budget_currency",
                        f"campaign {camp_.code!r} has a budget in {camp_.budget.currency}; "
                        f"this rule gives {unit}",
                    )
                )
        if rule.stacking == "best_of" and rule.effect in ("redeem", "exclude"):
            errors.append(
                _err(f"{p}.stacking", "stacking", f"best_of does not apply to {rule.effect}")
            )
    return errors


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule and of one campaign (published in docs/rules.md and at
    ``GET /api/v1/rules/schema``)."""
    refs, defs = models_json_schema(
        [(RuleSpec, "validation"), (CampaignSpec, "validation")], by_alias=True
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kopilka rules and campaigns",
        "type": "object",
        "properties": {
            "rules": {"type": "array", "items": refs[(RuleSpec, "validation")]},
            "campaigns": {"type": "array", "items": refs[(CampaignSpec, "validation")]},
        },
        **defs,
    }


DAY_INDEX = {d: i for i, d in enumerate(DAYS)}
