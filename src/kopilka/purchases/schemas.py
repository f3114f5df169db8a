"""What crosses the API for purchases and returns, and for the simulation of receipts
(``POST /rules/simulate``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from kopilka.core.dates import Day, Timestamp
from kopilka.core.money import MAX_AMOUNT, AmountError, round_half_up, to_decimal
from kopilka.members.schemas import MemberRef

Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3, allow_inf_nan=False)]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    sku: Annotated[str, Field(min_length=1, max_length=100)]
    name: Annotated[str | None, Field(max_length=300)] = None
    category: Annotated[str | None, Field(max_length=100)] = None
    quantity: Quantity
    unit_price: Money
    # a reward of the programme's catalogue (``rewards:``) sold on this line: charged at the
    # reward's price, its cost debited from the member's wallet (docs/rewards.md)
    reward: Annotated[str | None, Field(min_length=1, max_length=64)] = None

    @model_validator(mode="after")
    def _amount_in_range(self) -> LineIn:
        # quantity × unit price may be far beyond what an amount can be (10^9 × 10^13)
        if self.amount() >= MAX_AMOUNT:
            raise ValueError(
                f"quantity × unit_price is {self.amount()}: a line's amount must stay "
                f"below {MAX_AMOUNT:,.0f}"
            )
        return self

    def amount(self) -> Decimal:
        """The line's amount: quantity × unit price, rounded half up to 0.01."""
        return round_half_up(self.quantity * self.unit_price, 2)


def _redeem_amount(value: object) -> Decimal | str:
    if value == "max":
        return "max"
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('a decimal string or "max"')
    try:
        amount = to_decimal(str(value))
    except AmountError as exc:
        raise ValueError('a decimal string or "max"') from exc
    if amount < 0:
        raise ValueError("must not be negative")
    if amount != amount.quantize(Decimal("0.0001")):
        raise ValueError("at most 4 decimal places")
    return amount


RedeemAmount = Annotated[
    Decimal | Literal["max"],
    PlainValidator(_redeem_amount),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": r"^\d+(\.\d{1,4})?$"}, {"const": "max"}]}
    ),
]


class RedeemIn(BaseModel):
    """``amount``: a decimal string, or ``"max"`` for as much as the receipt may take;
    ``"0"`` redeems nothing (tills send it when the customer pays no points)."""

    model_config = ConfigDict(extra="forbid")
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    amount: RedeemAmount


class PaymentIn(BaseModel):
    """How the receipt was paid, as far as the loyalty programme needs to know:
    ``card_fingerprint`` is the payment card's stable fingerprint from the acquirer or the
    till's payment terminal (never the card number). Kept only as a keyed digest, to tell a
    friend's purchase paid with their referrer's card (docs/referrals.md)."""

    model_config = ConfigDict(extra="forbid")
    card_fingerprint: Annotated[str | None, Field(min_length=8, max_length=128)] = None


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    external_id: Annotated[str, Field(min_length=1, max_length=100)]
    member: MemberRef | None = None
    store: Annotated[str, Field(min_length=1, max_length=64)]
    channel: Literal["pos", "online", "app"] = "pos"
    occurred_at: Timestamp
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    coupons: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=20)
    ] = []
    redeem: RedeemIn | None = None
    hold: bool = False
    payment: PaymentIn | None = None
    quote_id: Annotated[str | None, Field(max_length=64)] = None

    @field_validator("lines")
    @classmethod
    def _subtotal_in_range(cls, v: list[LineIn]) -> list[LineIn]:
        subtotal = sum((line.amount() for line in v), Decimal(0))
        if subtotal >= MAX_AMOUNT:
            raise ValueError(
                f"the lines add up to {subtotal}: a receipt's subtotal must stay "
                f"below {MAX_AMOUNT:,.0f}"
            )
        return v


class CommitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt_number: Annotated[str | None, Field(max_length=100)] = None


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_no: Annotated[int, Field(ge=1)]
    quantity: Quantity


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    external_id: Annotated[str, Field(min_length=1, max_length=100)]
    lines: Annotated[list[ReturnLineIn], Field(min_length=1, max_length=500)]


# ---------------------------------------------------------------------------- answers
# Amounts are decimal strings exact to their currency's precision, as everywhere in the
# API. The confirm, commit, cancel and return answers are rendered from the dicts the
# service builds (a till's hot path), so these models declare them; the tests and the
# fuzzer check that every answer matches. ``extra="forbid"``: a key the model does not
# name is a break of the contract, not something to pass along quietly; ``strict``: nor is
# a value of another type (validation would turn a count of 1 into ``true``).


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PointsOut(_Out):
    """An amount of one currency (points or stamps)."""

    currency: str
    amount: str


class RedeemedOut(_Out):
    """Points redeemed, with their ``value`` in money (what they paid of the receipt)."""

    currency: str
    amount: str
    value: str


class EarnedOut(_Out):
    """Points earned on the receipt; ``available_at``: when they can be spent."""

    currency: str
    amount: str
    available_at: str


class CouponResultOut(_Out):
    """A code of the receipt; ``reason`` says why one was rejected."""

    code: str
    status: Literal["applied", "rejected"]
    reason: str | None


class AppliedRuleOut(_Out):
    """A rule (or a coupon, a tier benefit) that acted on the receipt; ``lines``: the
    ``line_no`` of the lines it acted on."""

    key: str | None
    version: int | None
    name: str
    effect: str
    reason: str
    campaign: str | None
    currency: str | None
    amount: str | None
    lines: list[int]


class WarningOut(_Out):
    """A limit ``calculate`` reports instead of failing (``insufficient_balance``,
    ``redeem_limit_exceeded``); the redemption shown is cut to what is allowed."""

    code: str
    field: str
    message: str


class LineFiguresOut(_Out):
    """One receipt line's figures; they add up to the receipt's totals exactly."""

    line_no: int
    sku: str
    name: str | None
    category: str | None
    quantity: str
    unit_price: str
    amount: str
    discount: str
    redeemed: list[RedeemedOut]
    total_due: str
    earned: list[PointsOut]
    # only on a line sold as a reward of the catalogue: its code
    reward: str | None = None


class FiguresOut(_Out):
    """The figures of a receipt, the same in calculate, confirm and simulate.
    ``max_redeemable`` and ``available``: of the currency asked to redeem (null when
    nothing is asked, or there is no member)."""

    external_id: str
    store: str
    channel: Literal["pos", "online", "app"]
    member_id: str | None
    occurred_at: str
    subtotal: str
    discount: str
    redeemed: list[RedeemedOut]
    total_due: str
    earned: list[EarnedOut]
    max_redeemable: PointsOut | None
    available: PointsOut | None
    coupons: list[CouponResultOut]
    applied_rules: list[AppliedRuleOut]
    warnings: list[WarningOut]
    lines: list[LineFiguresOut]


class CalculationOut(FiguresOut):
    """``POST /purchases/calculate``: the figures, and the ``quote_id`` that pins them."""

    quote_id: str


class PurchaseOut(FiguresOut):
    """A recorded purchase: its figures as confirmed (keys in the answer: ``id`` and
    ``status`` first, then the figures, then the rest)."""

    id: str
    status: Literal["held", "confirmed", "cancelled", "released"]
    hold_expires_at: str | None
    receipt_number: str | None
    created_at: str


class CancelledOut(PurchaseOut):
    """``POST /purchases/{id}/cancel``: ``refund_due`` (money) when this call reversed a
    confirmed purchase; absent when it released a hold or the purchase was already
    cancelled or released."""

    refund_due: str | None = None


class PurchasePage(_Out):
    items: list[PurchaseOut]
    next_cursor: str | None


class ReturnLineOut(_Out):
    line_no: int
    quantity: str
    refund: str
    points_restored: str
    points_revoked: list[PointsOut]


class ReturnOut(_Out):
    """A return: money to refund, points given back (``points_restored``, of the redeemed
    currency) and points earned taken back (``points_revoked``), in total and per line."""

    id: str
    purchase_id: str
    external_id: str
    created_at: str
    refund_due: str
    points_restored: list[PointsOut]
    points_revoked: list[PointsOut]
    lines: list[ReturnLineOut]


# ---------------------------------------------------------------------------- simulate


class HypotheticalMember(BaseModel):
    """A member who need not exist, for "what would a gold member with a birthday get"."""

    model_config = ConfigDict(extra="forbid")
    tier: Annotated[str | None, Field(max_length=32)] = None
    tags: list[Annotated[str, Field(max_length=64)]] = []
    birth_date: Day | None = None
    joined_at: Timestamp | None = None
    purchases_count: Annotated[int, Field(ge=0)] = 0
    lifetime_spend: Annotated[Decimal, Field(ge=0, max_digits=17, decimal_places=2)] = Decimal(0)
    personal_discount: Annotated[Decimal | None, Field(gt=0, le=100, decimal_places=4)] = None


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt: dict[str, Any] | None = None
    receipts: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    member_context: HypotheticalMember | None = None
    # a draft: a whole programme (as the programme file's mapping) or only new rules
    program: dict[str, Any] | None = None
    rules: list[dict[str, Any]] | None = None


class VerdictOut(BaseModel):
    """One rule's fate on the receipt: ``fired`` (with what it gave in ``applied_rules``) or
    not, and why (``reason``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: str
    version: int | None
    name: str
    effect: str
    fired: bool
    reason: str


class SimulationOut(FiguresOut):
    """A receipt's figures under the programme in force (``program_version``) or a draft
    (null), with every rule's verdict."""

    program_version: int | None
    rules: list[VerdictOut]


class SimulationPage(BaseModel):
    """The answer for ``receipts``: one simulation per receipt, in the order sent."""

    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[SimulationOut]
