"""HTTP endpoints for custom events: record one, read one, list a member's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.custom_events import service
from kopilka.custom_events.schemas import EventIn, EventList, EventOut
from kopilka.program.service import check_occurred_at
from kopilka.spec.custom_events import EVENT_TYPE_RE

router = APIRouter(tags=["custom events"])

# Events have no store: tills (cashier keys) and partners record them for any member,
# like the member references of their receipts.
Recorder = Annotated[Principal, Depends(require("admin", "manager", "cashier", "partner"))]
Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support"))]
MemberReader = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "member"))
]
IdemKey = Annotated[str | None, Header()]


@router.post(
    "/events",
    status_code=201,
    responses={201: {"model": EventOut}, 200: {"model": EventOut}},
)
def record_event(
    body: EventIn, session: SessionDep, principal: Recorder, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Record a custom event (``clothes_recycled``, ``jar_returned`` …) and answer the
    rewards its rules gave: ``granted``, ``limited`` or ``rejected`` with a reason. The
    same event again (same ``external_id`` and content) answers 200 with the same answer."""

    def action() -> tuple[int, Any]:
        check_occurred_at(session, body.occurred_at)
        return service.record_event(session, body, principal)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        "POST /events",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(payload, status_code=status)


@router.get("/events/{event_id}", responses={200: {"model": EventOut}})
def get_event(event_id: uuid.UUID, session: SessionDep, _: Reader) -> dict[str, Any]:
    """One custom event with the rewards it got."""
    return service.get_event(session, event_id)


@router.get("/members/{member_id}/events", responses={200: {"model": EventList}})
def member_events(
    member_id: uuid.UUID,
    session: SessionDep,
    _: MemberReader,
    type: Annotated[str | None, Query(pattern=EVENT_TYPE_RE)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A member's custom events, newest first (members may list their own)."""
    items, nxt = service.list_events(session, member_id, type=type, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": nxt}
