"""What crosses the API for the rewards catalogue and its claims."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CostOut(_Out):
    currency: str
    amount: str


class AvailableOut(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str | None = None
    to: str | None = None


class RewardOut(_Out):
    """A reward of the catalogue: ``kind`` ``till`` (a product at a token price, sold on a
    receipt line with ``"reward"``) or ``coupon`` (claimed); ``stock_left`` null:
    unlimited; ``available_now``: within its dates and in stock."""

    code: str
    name: dict[str, Any] | str
    description: dict[str, Any] | str | None
    image: str | None
    cost: CostOut
    gives: dict[str, Any]
    kind: Literal["till", "coupon"]
    stock: int | None
    stock_left: int | None
    taken: int
    available: dict[str, str | None]
    available_now: bool
    per_member: int | None


class RewardList(_Out):
    items: list[RewardOut]


class ClaimOut(_Out):
    """A claim of a reward: ``status`` ``held`` (a held receipt), ``claimed``,
    ``returned`` or ``released``."""

    id: str
    reward: str
    member_id: str
    channel: Literal["till", "app"]
    status: Literal["held", "claimed", "returned", "released"]
    units: int
    returned_units: int
    cost: CostOut
    coupon_code: str | None
    purchase_id: str | None
    line_no: int | None
    created_at: str


class ClaimList(_Out):
    items: list[ClaimOut]


class ProgressOut(_Out):
    """How far the balance gets toward a reward: ``have`` of ``need``."""

    have: str
    need: str
    enough: bool


class CardRewardOut(RewardOut):
    progress: ProgressOut


class CardOut(_Out):
    """One currency rewards cost in: the balance, a ``debt`` when it is negative (stickers
    of a returned receipt already spent), the season's last day, and the rewards."""

    currency: str
    name: str
    balance: str
    debt: str | None
    expires_on: str | None
    rewards: list[CardRewardOut]


class StickerCardOut(_Out):
    cards: list[CardOut]
