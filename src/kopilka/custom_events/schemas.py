"""What crosses the API for custom events."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from kopilka.core.dates import Timestamp
from kopilka.members.schemas import MemberRef
from kopilka.spec.custom_events import EventType, PropertyName

MAX_TEXT = 500


def _property_value(value: object) -> object:
    """A property is a scalar: a string, a number, a boolean or null."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a finite number is expected")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
        return value
    raise ValueError("a string, number, boolean or null is expected (no objects or lists)")


PropertyValue = Annotated[
    Any,
    PlainValidator(_property_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_TEXT},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        }
    ),
]


class EventIn(BaseModel):
    """A custom event of a member. ``external_id`` is the caller's id of the event: the
    same event sent again answers the first answer and changes nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member: MemberRef
    type: EventType
    external_id: Annotated[str, Field(min_length=1, max_length=100)]
    occurred_at: Timestamp
    properties: Annotated[dict[PropertyName, PropertyValue], Field(max_length=50)] = {}


class PointsOut(BaseModel):
    currency: str
    amount: str
    available_at: str


class CouponOut(BaseModel):
    code: str | None
    pool: str


class RewardOut(BaseModel):
    """What one event rule did: ``granted``, ``limited`` (a limit reached: ``reason`` is
    ``limit_per_day`` …) or ``rejected`` (``reason`` says why)."""

    rule: str
    status: str
    reason: str | None = None
    points: PointsOut | None = None
    coupon: CouponOut | None = None


class EventOut(BaseModel):
    id: str
    type: str
    external_id: str
    member_id: str
    occurred_at: str
    properties: dict[str, Any]
    rewards: list[RewardOut]
    created_at: str


class EventList(BaseModel):
    items: list[EventOut]
    next_cursor: str | None
