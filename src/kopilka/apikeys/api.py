"""API keys over HTTP (admins): create, list, read, revoke, rotate. Every change is in the
audit log; a key is shown only in the answer that issues it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.apikeys import service
from kopilka.apikeys.schemas import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyRotate,
)
from kopilka.core.auth import SessionDep, require
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.security.crypto import decrypt, encrypt

router = APIRouter(prefix="/apikeys", tags=["api keys"])

Admin = Annotated[Principal, Depends(require("admin"))]


SEAL_CONTEXT = "idempotency_keys.api_key"


def _sealed(row: Any, key: str) -> dict[str, Any]:
    # The answer is stored for Idempotency-Key replays: the key only encrypted.
    return {**service.key_json(row), "key_sealed": encrypt(key, SEAL_CONTEXT)}


def _unsealed(payload: Any) -> Any:
    if isinstance(payload, dict) and "key_sealed" in payload:
        out = {k: v for k, v in payload.items() if k != "key_sealed"}
        out["key"] = decrypt(payload["key_sealed"], SEAL_CONTEXT)
        return out
    return payload


@router.post("", status_code=201, response_model=ApiKeyIssued)
def create_key(
    body: ApiKeyCreate,
    session: SessionDep,
    principal: Admin,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Issue a key (shown in this answer; a retry with the same Idempotency-Key answers the
    same key, kept encrypted meanwhile, and issues no other)."""

    def action() -> tuple[int, Any]:
        row, key = service.create_key(
            session,
            body.name,
            body.role,
            body.store,
            body.partner,
            expires_at=body.expires_at,
            created_by=principal.actor,
        )
        return 201, _sealed(row, key)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        "POST /apikeys",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(_unsealed(payload), status_code=status)


@router.get("", response_model=ApiKeyList)
def list_keys(
    session: SessionDep,
    _: Admin,
    active: Annotated[bool, Query(description="only keys that still work")] = False,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    rows, nxt = service.list_keys(session, include_inactive=not active, cursor=cursor, limit=limit)
    return {"items": [service.key_json(r) for r in rows], "next_cursor": nxt}


@router.get("/{key_id}", response_model=ApiKeyOut)
def get_key(key_id: uuid.UUID, session: SessionDep, _: Admin) -> dict[str, Any]:
    return service.key_json(service.get_key(session, key_id))


@router.post("/{key_id}/revoke", response_model=ApiKeyOut)
def revoke_key(
    key_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Stop a key at once (in this process; others within KOPILKA_API_KEY_CACHE_SECONDS).
    Revoking a revoked key changes nothing."""

    def action() -> tuple[int, Any]:
        return 200, service.key_json(service.revoke_key(session, key_id, principal.actor))

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /apikeys/{key_id}/revoke",
        {},
        action,
    )
    return JSONResponse(payload, status_code=status)


@router.post("/{key_id}/rotate", status_code=201, response_model=ApiKeyIssued)
def rotate_key(
    key_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,
    body: ApiKeyRotate | None = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Issue a successor with the same role and scope (shown once); the old key keeps
    working for ``grace_seconds`` (default one day) so integrations switch without
    downtime. 409 ``api_key_rotated`` if the key has a successor already."""
    grace = (body or ApiKeyRotate()).grace_seconds

    def action() -> tuple[int, Any]:
        row, key = service.rotate_key(session, key_id, grace, principal.actor)
        return 201, _sealed(row, key)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /apikeys/{key_id}/rotate",
        {"grace_seconds": grace},
        action,
    )
    return JSONResponse(_unsealed(payload), status_code=status)
