"""What the leaderboards' API answers and takes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class BoardName(BaseModel):
    ru: str
    en: str


class BoardOut(BaseModel):
    code: str
    name: BoardName
    metric: str  # points_earned | visits | spent | challenge
    currency: str | None
    challenge: str | None
    period: str  # day | week | month | all
    per_store: bool
    size: int


class BoardList(BaseModel):
    items: list[BoardOut]


class RankOut(BaseModel):
    rank: int
    display_name: str
    value: str


class MemberRankOut(BaseModel):
    rank: int
    value: str


class StandingOut(BaseModel):
    board: str
    period: str  # the period's key: 2026-12-07, 2026-W49, 2026-12 or all
    store: str | None
    items: list[RankOut]
    member: MemberRankOut | None


class PlayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opted_in: bool
    # checked by the service (422 naming ``nickname``); None or "": the masked name
    nickname: Annotated[str | None, Field(max_length=100)] = None


class PlayerOut(BaseModel):
    opted_in: bool
    nickname: str | None
    display_name: str | None
