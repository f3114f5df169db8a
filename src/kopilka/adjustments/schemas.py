"""What crosses the API for adjustments: the request, and those waiting for approval."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kopilka.ledger.schemas import AmountStr


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    amount: AmountStr
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class AdjustmentOut(BaseModel):
    id: str
    member_id: str
    currency: str
    amount: str
    reason: str
    status: str
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    decision_note: str | None
    entry_id: str | None


class AdjustmentPage(BaseModel):
    items: list[AdjustmentOut]
    next_cursor: str | None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=3, max_length=500)]
