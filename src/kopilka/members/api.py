"""HTTP endpoints for members: thin, they parse, authorise, call the service and answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.config import get_settings
from kopilka.core.errors import Problem, validation_problem
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.members import privacy, service
from kopilka.members.schemas import (
    ConsentHistory,
    ConsentsIn,
    EraseIn,
    MemberCreate,
    MemberExportOut,
    MemberList,
    MemberOut,
    MemberUpdate,
    StatusIn,
)
from kopilka.program.service import current_program
from kopilka.security.ratelimit import define, rate_limit

router = APIRouter(prefix="/members", tags=["members"])

EXPORT_LIMIT = define("member_export", 20, 3600)

Staff = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support", "cashier"))]
StaffOrSelf = Annotated[
    Principal,
    Depends(require("admin", "manager", "analyst", "support", "cashier", "member")),
]
Writer = Annotated[Principal, Depends(require("admin", "manager", "support", "cashier"))]
Editor = Annotated[Principal, Depends(require("admin", "manager", "support"))]
ConsentWriter = Annotated[
    Principal, Depends(require("admin", "manager", "support", "cashier", "member"))
]
Exporter = Annotated[Principal, Depends(require("admin", "support", "member"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def _out(session: Any, member_id: uuid.UUID) -> dict[str, Any]:
    return service.to_out(session, service.get_member(session, member_id)).model_dump(mode="json")


@router.post("", status_code=201, response_model=MemberOut)
def create_member(
    body: MemberCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Enrol a member. 409 ``member_exists`` if the phone, email or external id is taken."""
    region = current_program(session).spec.default_phone_region

    def action() -> tuple[int, object]:
        via = service.Enrolment(
            channel="pos" if principal.role == "cashier" else "api",
            store=principal.store,
            cashier=principal.actor if principal.role == "cashier" else None,
        )
        member = service.create_member(session, body, region, get_settings().card_prefix, via)
        # Only the id is kept for Idempotency-Key replays: personal data stays encrypted.
        return 201, {"id": str(member.id)}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        "POST /members",
        body.model_dump(mode="json"),
        action,
    )
    if status == 201 and isinstance(payload, dict) and set(payload) == {"id"}:
        payload = _out(session, uuid.UUID(payload["id"]))
    return JSONResponse(payload, status_code=status)


@router.get("/{member_id}", response_model=MemberOut)
def get_member(member_id: uuid.UUID, session: SessionDep, _: StaffOrSelf) -> MemberOut:
    return service.to_out(session, service.get_member(session, member_id))


@router.get("", response_model=MemberList)
def list_members(
    session: SessionDep,
    _: Staff,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    card: Annotated[str | None, Query(max_length=32)] = None,
    external_id: Annotated[str | None, Query(max_length=100)] = None,
    name: Annotated[str | None, Query(max_length=200, description="exact, any case")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MemberList:
    """Find members by exactly one of phone, email, card, external id or name, or list them
    all. Look-ups that find nobody count against the caller (429 past the limit)."""
    given = [
        k
        for k, v in (
            ("phone", phone),
            ("email", email),
            ("card", card),
            ("external_id", external_id),
            ("name", name),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise validation_problem(
            [
                {
                    "field": f,
                    "in": "query",
                    "code": "exclusive",
                    "message": "give at most one of phone, email, card, external_id, name",
                }
                for f in given
            ]
        )
    region = current_program(session).spec.default_phone_region
    rows, next_cursor = service.find_members(
        session,
        region,
        phone=phone,
        email=email,
        card=card,
        external_id=external_id,
        name=name,
        cursor=cursor,
        limit=limit,
    )
    return MemberList(items=[service.to_out(session, m) for m in rows], next_cursor=next_cursor)


@router.patch("/{member_id}", response_model=MemberOut)
def update_member(
    member_id: uuid.UUID, body: MemberUpdate, session: SessionDep, principal: Editor
) -> dict[str, Any]:
    """Change personal details (fields sent; null clears). 409 ``member_exists`` if a new
    phone, email or external id belongs to another member."""
    region = current_program(session).spec.default_phone_region
    changes = body.model_dump(exclude_unset=True)
    service.update_member(session, member_id, changes, region, principal.actor)
    session.commit()
    return _out(session, member_id)


@router.post("/{member_id}/status", response_model=MemberOut)
def set_status(
    member_id: uuid.UUID,
    body: StatusIn,
    session: SessionDep,
    principal: Editor,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Block or unblock a member (a blocked member can neither earn nor redeem)."""

    def action() -> tuple[int, Any]:
        service.set_status(session, member_id, body.status, principal.actor, body.reason)
        return 200, {"id": str(member_id)}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/status",
        body.model_dump(mode="json"),
        action,
    )
    if status == 200:
        payload = _out(session, member_id)
    return JSONResponse(payload, status_code=status)


@router.get("/{member_id}/consents", response_model=ConsentHistory)
def get_consents(member_id: uuid.UUID, session: SessionDep, _: StaffOrSelf) -> dict[str, Any]:
    """The consent in force per channel and every record behind it, oldest first."""
    service.get_member(session, member_id)
    return {
        "current": service.current_consents(session, member_id),
        "history": service.consent_history(session, member_id),
    }


@router.post("/{member_id}/consents", status_code=201, response_model=ConsentHistory)
def record_consents(
    member_id: uuid.UUID,
    body: ConsentsIn,
    session: SessionDep,
    principal: ConsentWriter,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Record consent given or withdrawn per channel, with its source and text version."""

    def action() -> tuple[int, Any]:
        member = service.get_member(session, member_id)
        if member.status == "erased":
            raise Problem(409, "member_erased", f"member {member_id} is erased")
        service.record_consents(
            session,
            member_id,
            body.model_dump(include={"email", "sms", "push"}),
            body.source,
            body.text_version,
            actor=principal.actor,
        )
        return 201, {"id": str(member_id)}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/consents",
        body.model_dump(mode="json"),
        action,
    )
    if status == 201:
        payload = {
            "current": service.current_consents(session, member_id),
            "history": service.consent_history(session, member_id),
        }
    return JSONResponse(payload, status_code=status)


@router.get(
    "/{member_id}/export",
    dependencies=[Depends(rate_limit(EXPORT_LIMIT, per=("key",)))],
    response_model=MemberExportOut,
)
def export_member(member_id: uuid.UUID, session: SessionDep, principal: Exporter) -> JSONResponse:
    """Everything held about the member as one JSON document: profile, consents, balances,
    ledger, purchases, audit trail (recorded in the audit log)."""
    doc = privacy.export_member(session, member_id, principal.actor)
    session.commit()
    return JSONResponse(
        doc,
        headers={"Content-Disposition": f'attachment; filename="member-{member_id}.json"'},
    )


@router.post("/{member_id}/erase", response_model=MemberOut)
def erase_member(
    member_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,
    body: EraseIn | None = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Remove the member's personal data; the account stays, anonymous, with its ledger
    whole. Erasing again changes nothing."""
    reason = body.reason if body else None

    def action() -> tuple[int, Any]:
        privacy.erase_member(
            session, member_id, principal.actor, reason, get_settings().card_prefix
        )
        return 200, {"id": str(member_id)}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/erase",
        {"reason": reason},
        action,
    )
    if status == 200:
        payload = _out(session, member_id)
    return JSONResponse(payload, status_code=status)
