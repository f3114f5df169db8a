"""Security over HTTP: velocity flags to review, and the rate limits in force."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from kopilka.core.auth import SessionDep, require
from kopilka.core.principal import Principal
from kopilka.security import ratelimit, velocity

router = APIRouter(prefix="/security", tags=["security"])

Reviewer = Annotated[Principal, Depends(require("admin", "manager", "support"))]
Decider = Annotated[Principal, Depends(require("admin", "manager"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class FlagOut(BaseModel):
    id: str
    rule: str
    member_id: str | None
    details: dict[str, Any]
    status: str
    created_at: str
    reviewed_by: str | None
    reviewed_at: str | None
    review_note: str | None


class FlagPage(BaseModel):
    items: list[FlagOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["dismissed", "confirmed"]
    note: Annotated[str | None, Field(max_length=500)] = None


class LimitOut(BaseModel):
    name: str
    limit: int
    window_seconds: int


@router.get("/flags", response_model=FlagPage)
def list_flags(
    session: SessionDep,
    _: Reviewer,
    status: Literal["open", "dismissed", "confirmed", "all"] = "open",
    member_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Suspicious patterns flagged by the velocity rules, newest first."""
    items, nxt = velocity.list_flags(
        session,
        status=None if status == "all" else status,
        member_id=member_id,
        cursor=cursor,
        limit=limit,
    )
    return {"items": items, "next_cursor": nxt}


@router.post("/flags/{flag_id}/review", response_model=FlagOut)
def review_flag(
    flag_id: uuid.UUID, body: ReviewIn, session: SessionDep, principal: Decider
) -> dict[str, Any]:
    """Close an open flag as dismissed or confirmed (409 ``flag_reviewed`` if closed)."""
    flag = velocity.review_flag(session, flag_id, body.status, principal.actor, body.note)
    session.commit()
    return velocity.flag_json(flag)


@router.get("/rate-limits", response_model=list[LimitOut])
def rate_limits(_: Admin) -> list[dict[str, Any]]:
    """Every rate limit in force (defaults with KOPILKA_RATE_LIMITS applied)."""
    return [
        {"name": lim.name, "limit": lim.limit, "window_seconds": lim.window}
        for lim in ratelimit.limits()
    ]
