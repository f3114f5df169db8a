"""HTTP endpoints for balances, history and transfers (a manual adjustment,
``POST /members/{id}/adjustments``, is the adjustments' own: ``kopilka.adjustments.api``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.dates import Timestamp
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.ledger import service
from kopilka.ledger.schemas import BalancesOut, EntryOut, LedgerPage, TransferIn, entry_out
from kopilka.members import service as members
from kopilka.program.service import current_program

router = APIRouter(prefix="/members", tags=["ledger"])

Staff = Annotated[Principal, Depends(require("admin", "manager", "analyst", "cashier"))]
Manager = Annotated[Principal, Depends(require("admin", "manager"))]


@router.get("/{member_id}/balances", response_model=BalancesOut)
def get_balances(
    member_id: uuid.UUID,
    session: SessionDep,
    _: Staff,
    as_of: Annotated[Timestamp | None, Query(description="RFC 3339 with offset")] = None,
) -> dict[str, Any]:
    """Available, pending and next expiry per currency, now or at ``as_of``."""
    members.get_member(session, member_id)
    return {"balances": [b.as_json() for b in service.balances(session, member_id, as_of)]}


@router.get("/{member_id}/ledger", response_model=LedgerPage)
def get_ledger(
    member_id: uuid.UUID,
    session: SessionDep,
    _: Staff,
    currency: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The member's entries, newest first, each with its signed amount."""
    members.get_member(session, member_id)
    items, nxt = service.history(session, member_id, currency, cursor, limit)
    return {"items": [i.as_json() for i in items], "next_cursor": nxt}


@router.post("/{member_id}/transfers", status_code=201, response_model=EntryOut)
def transfer(
    member_id: uuid.UUID,
    body: TransferIn,
    session: SessionDep,
    principal: Manager,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Give points to another member, within the programme's transfer switch and limits."""

    def action() -> tuple[int, Any]:
        program = current_program(session).spec
        members.get_member(session, member_id)
        recipient = members.resolve_member(session, body.to, program.default_phone_region, "to")
        cur = service.currency_row(session, body.currency)
        key = f"transfer:{principal.actor}:{idempotency_key or uuid.uuid4()}"
        # the switch and the limits are checked inside, under the sender's wallet lock
        entry = service.transfer(
            session,
            key=key,
            from_member=member_id,
            to_member=recipient.id,
            currency=cur.code,
            amount=body.amount,
            actor=principal.actor,
            description=body.message or "",
            program=program,
        )
        return 201, entry_out(entry, cur.precision)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/transfers",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(payload, status_code=status)
