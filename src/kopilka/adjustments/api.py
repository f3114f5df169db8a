"""HTTP endpoints for adjustments waiting for a second person's approval (they are asked
for with ``POST /members/{id}/adjustments``, see ``kopilka.ledger.api``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from kopilka.adjustments import service
from kopilka.adjustments.models import PENDING
from kopilka.adjustments.schemas import AdjustmentOut, AdjustmentPage, RejectIn
from kopilka.core.auth import SessionDep, require
from kopilka.core.principal import Principal

router = APIRouter(prefix="/adjustments", tags=["ledger"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "support"))]
Approver = Annotated[Principal, Depends(require("admin", "manager"))]


@router.get("", response_model=AdjustmentPage)
def list_adjustments(
    session: SessionDep,
    _: Reader,
    status: Literal["pending", "pending_approval", "approved", "rejected", "all"] = "pending",
    member_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Adjustments newest first; those waiting for approval unless ``status`` says."""
    chosen = {"all": None, "pending": PENDING}.get(status, status)
    items, nxt = service.list_adjustments(
        session, status=chosen, member_id=member_id, cursor=cursor, limit=limit
    )
    return {"items": items, "next_cursor": nxt}


@router.get("/{adjustment_id}", response_model=AdjustmentOut)
def get_adjustment(adjustment_id: uuid.UUID, session: SessionDep, _: Reader) -> dict[str, Any]:
    return service.adjustment_out(session, service.get(session, adjustment_id))


@router.post("/{adjustment_id}/approve", response_model=AdjustmentOut)
def approve(adjustment_id: uuid.UUID, session: SessionDep, principal: Approver) -> dict[str, Any]:
    """Approve and post a pending adjustment (once, however often it is sent); not the
    requester's own (403 ``adjustment_own_request``)."""
    adj = service.approve(session, adjustment_id, principal.actor)
    session.commit()
    return service.adjustment_out(session, adj)


@router.post("/{adjustment_id}/reject", response_model=AdjustmentOut)
def reject(
    adjustment_id: uuid.UUID, body: RejectIn, session: SessionDep, principal: Approver
) -> dict[str, Any]:
    """Reject a pending adjustment with a reason; nothing moves."""
    adj = service.reject(session, adjustment_id, principal.actor, body.reason)
    session.commit()
    return service.adjustment_out(session, adj)
