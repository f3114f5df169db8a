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


# ---------------------------------------------------------------------------- the report


class ReportPeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")  # local dates, inclusive
    to: str
    timezone: str


class FunnelWeekOut(BaseModel):
    week: str  # ISO week: 2026-W49
    week_start: str  # its Monday
    links_opened: int
    joined: int
    qualified: int
    rewarded: int


class FunnelTotalsOut(BaseModel):
    links_opened: int
    joined: int
    qualified: int
    rewarded: int


class OutcomeOut(BaseModel):
    status: str  # rejected | reversed
    reason: str | None
    referrals: int


class RewardCostOut(BaseModel):
    currency: str
    points_pending: str
    points_standing: str
    value: str  # the money value of one point
    money: str  # exact


class CouponRewardsOut(BaseModel):
    coupon_pool: str
    rewards: int


class RevenueGroupOut(BaseModel):
    members: int  # who bought in the period
    revenue: str
    revenue_per_member: str | None


class RevenueOut(BaseModel):
    referred: RevenueGroupOut
    others: RevenueGroupOut


class ReferralReportOut(BaseModel):
    report: str  # "referrals"
    period: ReportPeriodOut
    base_currency: str
    weeks: list[FunnelWeekOut]
    totals: FunnelTotalsOut
    outcomes: list[OutcomeOut]
    cost: list[RewardCostOut]
    cost_total: str
    coupons: list[CouponRewardsOut]
    revenue: RevenueOut
