"""What crosses the API about tiers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kopilka.core.dates import Timestamp
from kopilka.spec.tiers import TIER_RE


class TierAssignIn(BaseModel):
    """A manual assignment: the member is at least ``tier`` until ``until`` (or for good);
    ``"tier": null`` clears it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    tier: Annotated[str | None, Field(pattern=TIER_RE)]
    until: Timestamp | None = None
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class BenefitsOut(BaseModel):
    earn_multiplier: str
    discount_percent: str


class LevelOut(BaseModel):
    code: str
    name: str
    threshold: str
    benefits: BenefitsOut


class NextLevelOut(LevelOut):
    remaining: str


class WindowOut(BaseModel):
    rolling_days: int | None
    calendar: str | None
    from_: Annotated[str, Field(alias="from")]
    to: str

    model_config = ConfigDict(populate_by_name=True)


class FloorOut(BaseModel):
    tier: str
    until: str | None
    reason: str | None
    set_by: str | None
    set_at: str | None
    live: bool = False


class TierChangeOut(BaseModel):
    id: str
    from_: Annotated[str | None, Field(alias="from")]
    to: str | None
    reason: str
    at: str
    actor: str
    qualifying_value: str | None
    note: str | None

    model_config = ConfigDict(populate_by_name=True)


class TierHistoryPage(BaseModel):
    items: list[TierChangeOut]
    next_cursor: str | None


class TierStatusOut(BaseModel):
    member_id: str
    tier: str | None
    level: LevelOut | None
    metric: str | None
    currency: str | None
    qualifying_value: str | None
    window: WindowOut | None
    floor: FloorOut | None
    grace_until: str | None
    next: NextLevelOut | None
    history: list[TierChangeOut]
    as_of: str


class NextTierOut(BaseModel):
    """The next level and what is left to reach it (in the metric's unit)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    tier: str
    name: str
    remaining: str


class TierProgressOut(BaseModel):
    """What the member app shows of the member's level: the level now, the value that
    counts for it (``qualifying_value``, with ``precision`` decimal places) and the next
    level (null at the top)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    tier: str | None
    name: str | None
    metric: str | None
    currency: str | None
    precision: int
    qualifying_value: str | None
    next: NextTierOut | None
