"""What the challenges' report and simulation answer (``challenges/report_api.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DaysOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")  # local dates, inclusive
    to: str


class PeriodOut(DaysOut):
    timezone: str


class ComparisonOut(BaseModel):
    method: str  # "spend_deciles_before"
    before: DaysOut  # the equal window before the period


class PointsCostOut(BaseModel):
    currency: str
    points: str
    value: str  # the money value of one point
    money: str  # exact


class CouponCostOut(BaseModel):
    coupon_pool: str
    coupons: int
    face: str | None  # money per coupon, when known
    money: str | None


class BadgeCountOut(BaseModel):
    badge: str
    awarded: int


class CostOut(BaseModel):
    points: list[PointsCostOut]
    coupons: list[CouponCostOut]
    badges: list[BadgeCountOut]
    money: str  # points' money and the coupons' known face


class SpendOut(BaseModel):
    participants: int
    matched: int  # participants in a band with non-participants
    unmatched: int
    comparable: int  # non-participants in those bands
    per_participant: str | None
    per_comparable: str | None  # weighted by the participants of each band
    difference: str | None


class NameOut(BaseModel):
    ru: str
    en: str


class ChallengeFiguresOut(BaseModel):
    code: str
    name: NameOut
    join: str | None  # auto | opt_in
    joined: int
    took_part: int
    completed: int
    completions: int
    completion_rate: str | None
    cost: CostOut
    spend: SpendOut


class ChallengeReportOut(BaseModel):
    report: str  # "challenges"
    period: PeriodOut
    base_currency: str
    comparison: ComparisonOut
    items: list[ChallengeFiguresOut]


class StepReachedOut(BaseModel):
    target: str
    reached: int  # members' periods that reached it


class SimulationOut(BaseModel):
    challenge: str
    range: PeriodOut
    receipts: int
    members_buying: int
    eligible: int  # of them, in the audience
    progressed: int
    completed: int
    completions: int
    completion_rate: str | None  # completed ÷ progressed
    steps: list[StepReachedOut]
    control_group_completions: int
    cost: CostOut
