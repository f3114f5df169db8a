"""What crosses the API for adjustments waiting for approval."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


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
