"""HTTP endpoints of tiers: read a member's tier and history, assign a tier by hand."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.dates import Timestamp
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.members import service as members
from kopilka.tiers import service
from kopilka.tiers.schemas import TierAssignIn, TierHistoryPage, TierStatusOut

router = APIRouter(prefix="/members", tags=["tiers"])

Reader = Annotated[
    Principal,
    Depends(require("admin", "manager", "analyst", "support", "cashier", "member")),
]
Manager = Annotated[Principal, Depends(require("admin", "manager"))]


@router.get("/{member_id}/tier", response_model=TierStatusOut)
def get_tier(
    member_id: uuid.UUID,
    session: SessionDep,
    _: Reader,
    as_of: Annotated[Timestamp | None, Query(description="RFC 3339 with offset")] = None,
    history_limit: Annotated[int, Query(ge=0, le=100)] = 10,
) -> dict[str, Any]:
    """The member's tier, floor, grace period, qualifying value over the window, the next
    level with what is left to reach it, and the latest changes."""
    return service.status(session, member_id, as_of, history_limit)


@router.get("/{member_id}/tier/history", response_model=TierHistoryPage)
def get_tier_history(
    member_id: uuid.UUID,
    session: SessionDep,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Every change of the member's tier, newest first."""
    members.get_member(session, member_id)
    items, nxt = service.history(session, member_id, cursor, limit)
    return {"items": items, "next_cursor": nxt}


@router.post("/{member_id}/tier", response_model=TierStatusOut)
def assign_tier(
    member_id: uuid.UUID,
    body: TierAssignIn,
    session: SessionDep,
    principal: Manager,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Set a floor: the member is at least ``tier`` until ``until`` (or for good), raised
    at once if below it; ``"tier": null`` clears the floor. Audited."""

    def action() -> tuple[int, Any]:
        service.set_floor(session, member_id, body.tier, body.until, body.reason, principal.actor)
        return 200, TierStatusOut.model_validate(service.status(session, member_id)).model_dump(
            mode="json", by_alias=True
        )

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/tier",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(payload, status_code=status)
