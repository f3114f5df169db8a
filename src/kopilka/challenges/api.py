"""HTTP endpoints of the challenges and badges: the catalogues, a member's challenges and
badges, opting in, awarding and revoking a badge by hand."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response

from kopilka.challenges import service
from kopilka.challenges.schemas import (
    AwardIn,
    BadgeList,
    ChallengeList,
    MemberBadgeList,
    MemberBadgeOut,
    MemberChallengeList,
    MemberChallengeOut,
    RevokeIn,
)
from kopilka.core.auth import SessionDep, require
from kopilka.core.principal import Principal

router = APIRouter(tags=["challenges"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support", "cashier"))]
# A member reads and joins their own; staff read anyone's.
MemberSelf = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "cashier", "member"))
]
Joiner = Annotated[Principal, Depends(require("admin", "manager", "support", "cashier", "member"))]
Awarder = Annotated[Principal, Depends(require("admin", "manager", "support"))]
Code = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


@router.get("/challenges", response_model=ChallengeList)
def challenges(session: SessionDep, _: Reader) -> dict[str, Any]:
    """The programme's challenges, as it states them."""
    return {"items": service.catalogue(session)}


@router.get("/members/{member_id}/challenges", response_model=MemberChallengeList)
def member_challenges(member_id: uuid.UUID, session: SessionDep, _: MemberSelf) -> dict[str, Any]:
    """A member's challenges: the current period of each (its progress, status, steps and
    rewards), then past periods, newest first."""
    return {"items": service.member_challenges(session, member_id)}


@router.post("/members/{member_id}/challenges/{code}/join", response_model=MemberChallengeOut)
def join(member_id: uuid.UUID, code: Code, session: SessionDep, principal: Joiner) -> Any:
    """Opt a member in to a challenge (``join: opt_in``); joining again changes nothing.
    404 ``challenge_not_found``; 422 ``not_in_audience``, ``member_blocked``."""
    channel = "app" if principal.role == "member" else "api"
    item = service.join(session, member_id, code, channel)
    session.commit()
    return item


@router.get("/badges", response_model=BadgeList)
def badges(session: SessionDep, _: Reader) -> dict[str, Any]:
    """The programme's badge catalogue."""
    return {"items": service.badges(session)}


@router.get("/members/{member_id}/badges", response_model=MemberBadgeList)
def member_badges(member_id: uuid.UUID, session: SessionDep, _: MemberSelf) -> dict[str, Any]:
    """The badges a member holds, newest first."""
    return {"items": service.member_badges(session, member_id)}


@router.post("/members/{member_id}/badges", response_model=MemberBadgeOut, status_code=201)
def award(
    member_id: uuid.UUID, body: AwardIn, session: SessionDep, principal: Awarder
) -> JSONResponse:
    """Award a badge by hand, with a reason (audited). 422 ``unknown_badge``; 409
    ``badge_already_held``."""
    item = service.award_by_hand(session, member_id, body.badge, body.reason, principal.actor)
    session.commit()
    return JSONResponse(MemberBadgeOut.model_validate(item).model_dump(mode="json"), 201)


@router.post("/members/{member_id}/badges/{badge}/revoke", status_code=204)
def revoke(
    member_id: uuid.UUID,
    badge: Code,
    body: RevokeIn,
    session: SessionDep,
    principal: Awarder,
) -> Response:
    """Take a badge back, with a reason (audited). 404 ``badge_not_held``."""
    service.revoke_by_hand(session, member_id, badge, body.reason, principal.actor)
    session.commit()
    return Response(status_code=204)
