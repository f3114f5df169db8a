"""HTTP endpoints of the rewards catalogue: the catalogue with its stock, a member's claims
and a claim of a coupon reward (staff, or the member from the app)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.members import service as members
from kopilka.program.service import current_program
from kopilka.rewards import service
from kopilka.rewards.schemas import ClaimList, ClaimOut, RewardList, StickerCardOut

router = APIRouter(tags=["rewards"])

Reader = Annotated[
    Principal,
    Depends(require("admin", "manager", "analyst", "support", "cashier", "partner", "member")),
]
Claimer = Annotated[Principal, Depends(require("admin", "manager", "support", "cashier", "member"))]
MemberReader = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "member"))
]
Staff = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support"))]


@router.get("/rewards", response_model=RewardList)
def list_rewards(session: SessionDep, _: Reader) -> dict[str, Any]:
    """The catalogue of the programme in force, with each reward's stock left."""
    return {"items": service.catalogue(session)}


@router.get("/rewards/claims", response_model=ClaimList)
def list_claims(
    session: SessionDep,
    _: Staff,
    reward: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The newest claims, of one reward or all."""
    return {"items": service.list_claims(session, reward, limit)}


@router.get("/members/{member_id}/rewards/claims", response_model=ClaimList)
def member_claims(member_id: uuid.UUID, session: SessionDep, _: MemberReader) -> dict[str, Any]:
    """A member's claims, newest first (404 ``member_not_found`` for an unknown member)."""
    members.get_member(session, member_id)
    spec = current_program(session).spec
    return {"items": [service.claim_json(spec, c) for c in service.claims_of(session, member_id)]}


@router.get("/members/{member_id}/stickers", response_model=StickerCardOut)
def sticker_card(
    member_id: uuid.UUID,
    session: SessionDep,
    _: MemberReader,
    lang: Annotated[str, Query(pattern="^(ru|en)$")] = "ru",
) -> dict[str, Any]:
    """The member's sticker card: per currency rewards cost in, the balance (a ``debt``
    when negative) and every reward with the progress toward it ("17 of 30")."""
    return service.card(session, member_id, lang)


@router.post("/members/{member_id}/rewards/{code}/claim", status_code=201, response_model=ClaimOut)
def claim(
    member_id: uuid.UUID,
    code: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    principal: Claimer,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Claim a reward that is a coupon: its cost debited from the member's wallet, a stock
    unit taken (422 ``reward_unavailable`` when none is left or outside its dates), a
    personal code of its pool issued, ``reward.claimed``; all or nothing. 422
    ``insufficient_balance`` when the member lacks the cost."""

    def action() -> tuple[int, Any]:
        return 201, service.claim(session, member_id, code, principal.actor, idempotency_key)

    status, payload = run_idempotent(
        session,
        f"{principal.actor}",
        idempotency_key,
        f"POST /members/{member_id}/rewards/{code}/claim",
        {},
        action,
    )
    return JSONResponse(payload, status_code=status)
