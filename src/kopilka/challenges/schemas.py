"""What the challenges' and badges' API answers and takes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Names(BaseModel):
    ru: str
    en: str


class ProgressOut(BaseModel):
    value: str
    target: str


class PeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    key: str
    from_: str | None = Field(alias="from")
    to: str | None


class StepOut(BaseModel):
    target: str
    done: bool
    reward: dict[str, Any] | None


class StreakOut(BaseModel):
    every: str
    length: int
    grace: int


class PointsOut(BaseModel):
    currency: str
    amount: str


class RewardOut(BaseModel):
    step: int
    status: str  # pending | standing | revoked | control_group
    points: PointsOut | None
    coupon_code: str | None
    badge: str | None
    available_at: str


class MemberChallengeOut(BaseModel):
    code: str
    name: Names
    description: Names | None
    status: str  # active | completed | expired
    progress: ProgressOut
    period: PeriodOut
    join: str  # auto | opt_in
    joined: bool
    joined_at: str | None
    steps: list[StepOut]
    streak: StreakOut | None
    completed_at: str | None
    rewards: list[RewardOut]


class MemberChallengeList(BaseModel):
    items: list[MemberChallengeOut]


class ChallengeList(BaseModel):
    """The catalogue: each challenge as the programme states it, with its ``target``."""

    items: list[dict[str, Any]]


class BadgeOut(BaseModel):
    code: str
    name: Names
    description: Names | None
    image: str | None


class BadgeList(BaseModel):
    items: list[BadgeOut]


class MemberBadgeOut(BadgeOut):
    awarded_at: str
    source: str  # challenge:<code> | rule:<name> | staff


class MemberBadgeList(BaseModel):
    items: list[MemberBadgeOut]


class AwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    badge: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=3, max_length=500)]
