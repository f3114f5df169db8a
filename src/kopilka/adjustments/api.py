"""HTTP endpoints for manual adjustments: asked for with ``POST /members/{id}/adjustments``
(``members_router``), and those waiting for a second person's approval (``router``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.adjustments import service
from kopilka.adjustments.models import PENDING
from kopilka.adjustments.schemas import AdjustmentIn, AdjustmentOut, AdjustmentPage, RejectIn
from kopilka.core.auth import SessionDep, require
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.ledger.schemas import EntryOut, entry_out

router = APIRouter(prefix="/adjustments", tags=["ledger"])
# A member's adjustment is asked for under the member, beside their balances and ledger.
members_router = APIRouter(prefix="/members", tags=["ledger"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "support"))]
Approver = Annotated[Principal, Depends(require("admin", "manager"))]
Manager = Annotated[Principal, Depends(require("admin", "manager"))]


@members_router.post(
    "/{member_id}/adjustments",
    status_code=201,
    response_model=EntryOut,
    responses={202: {"model": AdjustmentOut, "description": "Waiting for approval"}},
)
def adjust(
    member_id: uuid.UUID,
    body: AdjustmentIn,
    session: SessionDep,
    principal: Manager,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """A manual correction (signed amount) with a reason; recorded in the audit log.
    Above the currency's ``adjust_approval_above``: 202, waiting for a second person."""

    def action() -> tuple[int, Any]:
        done = service.request(
            session,
            member_id=member_id,
            currency=body.currency,
            amount=body.amount,
            reason=body.reason,
            actor=principal.actor,
            key=f"adjust:{principal.actor}:{idempotency_key or uuid.uuid4()}",
        )
        if done.adjustment is not None:
            return 202, service.adjustment_json(done.adjustment, done.currency.precision)
        assert done.entry is not None
        return 201, entry_out(done.entry, done.currency.precision)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/adjustments",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(payload, status_code=status)


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
