"""What the referrals' API answers and takes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class FriendOut(BaseModel):
    id: str
    display_name: str  # masked: a first name and an initial, or the card's last digits


class RewardOut(BaseModel):
    role: str  # friend | referrer | bonus
    currency: str | None
    amount: str | None
    coupon_pool: str | None
    available_at: str
    status: str  # pending | standing | revoked


class ReferralOut(BaseModel):
    id: str
    referrer_id: str
    friend: FriendOut
    status: str  # joined | qualified | rewarded | rejected | reversed
    reason: str | None
    review: str  # none | pending | approved | rejected
    flags: list[str]
    rewards: list[RewardOut]
    qualified_at: str | None
    hold_until: str | None
    rewarded_at: str | None
    created_at: str


class ReferralList(BaseModel):
    items: list[ReferralOut]


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str | None, Field(max_length=500)] = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=3, max_length=500)]
