"""The ``tiers:`` section of the programme file.

Imports ``ProgramSpec`` only for type checking, so that ``kopilka.spec.program`` can
import this module without a cycle. The checks that need the whole programme (the currency
of the ``points`` metric) and the ones that name a level's own path (repeated codes,
thresholds out of order) are in ``validate_tiers``, called by
``kopilka.program.service.validate_program``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

TIER_RE = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # fits ``members.tier`` (32 characters)
METRICS = ("spend", "points", "purchases")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenefitsSpec(_Strict):
    """What a level gives; read by the rules engine (``kopilka.rules``)."""

    # points earned by the programme's rules are multiplied by this
    earn_multiplier: Annotated[Decimal, Field(ge=0, le=100, max_digits=8, decimal_places=4)] = (
        Decimal("1")
    )
    # a discount on every receipt, in percent of the line amounts
    discount_percent: Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)] = (
        Decimal("0")
    )


class TierSpec(_Strict):
    code: Annotated[str, Field(pattern=TIER_RE)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    # the qualifying value (in the metric's unit) from which the level is reached
    threshold: Annotated[Decimal, Field(ge=0, max_digits=17, decimal_places=4)]
    benefits: BenefitsSpec = BenefitsSpec()


class WindowSpec(_Strict):
    """Either the last ``rolling_days`` days, or the current calendar ``year``,
    ``quarter`` or ``month`` in the programme's time zone."""

    rolling_days: Annotated[int | None, Field(ge=1, le=3660)] = None
    calendar: Literal["year", "quarter", "month"] | None = None

    @model_validator(mode="after")
    def _one(self) -> WindowSpec:
        if (self.rolling_days is None) == (self.calendar is None):
            raise ValueError("give exactly one of rolling_days and calendar")
        return self


class TiersSpec(_Strict):
    metric: Literal["spend", "points", "purchases"] = "spend"
    currency: Annotated[str | None, Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")] = None
    window: WindowSpec = WindowSpec(rolling_days=365)
    grace_days: Annotated[int, Field(ge=0, le=3660)] = 30
    levels: Annotated[list[TierSpec], Field(min_length=1, max_length=50)]

    def level(self, code: str | None) -> TierSpec | None:
        return next((lv for lv in self.levels if lv.code == code), None)

    def rank(self, code: str | None) -> int:
        """The position of a level (0 = the lowest); -1 for no level or an unknown one."""
        return next((i for i, lv in enumerate(self.levels) if lv.code == code), -1)

    def qualifying_level(self, value: Decimal) -> TierSpec | None:
        """The highest level whose threshold ``value`` reaches (None below the first)."""
        found = None
        for lv in self.levels:
            if value >= lv.threshold:
                found = lv
        return found


def _err(field: str, code: str, message: str) -> dict[str, Any]:
    return {"field": field, "code": code, "message": message}


def validate_tiers(spec: ProgramSpec) -> list[dict[str, Any]]:
    """The errors of the programme's ``tiers:`` section, each naming its path."""
    tiers: TiersSpec | None = getattr(spec, "tiers", None)
    if tiers is None:
        return []
    errors = []
    if tiers.metric == "points":
        if tiers.currency is None:
            errors.append(_err("tiers.currency", "missing", "required when metric is points"))
        elif spec.currency(tiers.currency) is None:
            errors.append(_err("tiers.currency", "unknown", f"no currency {tiers.currency!r}"))
    elif tiers.currency is not None:
        errors.append(
            _err(
                "tiers.currency",
                "unexpected",
                f"only the points metric has a currency, not {tiers.metric}",
            )
        )
    seen: set[str] = set()
    for i, lv in enumerate(tiers.levels):
        if lv.code in seen:
            errors.append(
                _err(f"tiers.levels[{i}].code", "duplicate", f"level {lv.code!r} repeats")
            )
        seen.add(lv.code)
        if i and lv.threshold <= tiers.levels[i - 1].threshold:
            errors.append(
                _err(
                    f"tiers.levels[{i}].threshold",
                    "not_ascending",
                    f"must be above the threshold of {tiers.levels[i - 1].code!r} "
                    f"({tiers.levels[i - 1].threshold})",
                )
            )
        if tiers.metric == "purchases" and lv.threshold != lv.threshold.to_integral_value():
            errors.append(
                _err(f"tiers.levels[{i}].threshold", "integer", "a number of purchases is whole")
            )
    return errors
