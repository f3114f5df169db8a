"""The audit log over HTTP: read-only, for admins, newest first with a cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from kopilka.audit import service
from kopilka.core.auth import SessionDep, require
from kopilka.core.dates import Timestamp
from kopilka.core.principal import Principal

router = APIRouter(prefix="/audit", tags=["audit"])

Admin = Annotated[Principal, Depends(require("admin"))]


class AuditEntryOut(BaseModel):
    id: str
    occurred_at: str
    actor: str
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


@router.get("", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    _: Admin,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100, description="exact, or prefix.*")] = None,
    target_type: Annotated[str | None, Query(max_length=50)] = None,
    target_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339 with offset")] = None,
    until: Annotated[Timestamp | None, Query(description="RFC 3339 with offset")] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Who did what to which object, with before/after; filters combine."""
    items, nxt = service.list_entries(
        session,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return {"items": items, "next_cursor": nxt}
