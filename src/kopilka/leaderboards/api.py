"""HTTP endpoints of the leaderboards: the boards, a board's top and a member's rank, and a
member's choice to be shown."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from kopilka.core.auth import SessionDep, require
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.leaderboards import service
from kopilka.leaderboards.schemas import BoardList, PlayerIn, PlayerOut, StandingOut
from kopilka.program.service import current_program

router = APIRouter(tags=["leaderboards"])

Reader = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "cashier", "member"))
]
PlayerEditor = Annotated[Principal, Depends(require("admin", "manager", "support", "member"))]
PlayerReader = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "member"))
]


@router.get("/leaderboards", response_model=BoardList)
def list_boards(session: SessionDep, _: Reader) -> dict[str, Any]:
    """The programme's leaderboards."""
    spec = current_program(session).spec
    return {"items": [service.board_json(b) for b in spec.leaderboards]}


@router.get("/leaderboards/{code}", response_model=StandingOut)
def get_board(
    code: str,
    session: SessionDep,
    principal: Reader,
    period: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    member: uuid.UUID | None = None,
    store: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The members shown on a board in rank order (``limit``, at most the board's
    ``size``), in ``period`` (default: the current one) and ``store`` (a per-store board),
    and ``member``'s own rank (a member calling: their own, by default)."""
    spec = current_program(session).spec
    board = service.board_of(spec, code)
    if principal.kind == "member":
        own = uuid.UUID(principal.id)
        if member is not None and member != own:
            raise Problem(403, "forbidden", "a member may only ask for their own rank")
        member = own
    w = service.where(spec, board, period, store)
    return service.board_answer(session, spec, w, limit or board.size, member)


@router.get("/members/{member_id}/leaderboard", response_model=PlayerOut)
def get_player(member_id: uuid.UUID, session: SessionDep, _: PlayerReader) -> dict[str, Any]:
    """Whether the member is shown on the leaderboards, and under which name."""
    return service.get_player(session, member_id)


@router.put("/members/{member_id}/leaderboard", response_model=PlayerOut)
def put_player(
    member_id: uuid.UUID, body: PlayerIn, session: SessionDep, _: PlayerEditor
) -> dict[str, Any]:
    """Opt in (with a nickname, or under the masked name) or out; shown or hidden at once
    on every board. 422 ``validation_error`` naming ``nickname`` (its form, or taken)."""
    out = service.set_player(session, member_id, body.opted_in, body.nickname)
    session.commit()
    return out
