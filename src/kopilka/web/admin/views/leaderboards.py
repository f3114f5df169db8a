"""Leaderboards: a board of the programme in a period (and store), in rank order, each
member linked to their page (``leaderboards.service``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kopilka.core.errors import Problem
from kopilka.leaderboards import service as leaderboards
from kopilka.program.service import current_program
from kopilka.web.admin.views.shared import SessionDep, UserDep, page, problem_message

router = APIRouter()


@router.get("/leaderboards")
def leaderboards_screen(
    request: Request,
    session: SessionDep,
    user: UserDep,
    board: str | None = None,
    period: str | None = None,
    store: str | None = None,
) -> HTMLResponse:
    """A board (the first by default) in ``period`` (default: the current one) and
    ``store`` (a per-store board: the first store by default)."""
    p = page(request, user, "leaderboards.view", session)
    spec = current_program(session).spec
    boards = spec.leaderboards
    chosen = next((b for b in boards if b.code == board), boards[0] if boards else None)
    data: dict[str, Any] = {"boards": boards, "chosen": chosen, "rows": [], "where": None}
    if chosen is not None:
        if chosen.per_store and store is None and spec.stores:
            store = spec.stores[0].code
        try:
            w = leaderboards.where(
                spec, chosen, period or None, store if chosen.per_store else None
            )
        except Problem as exc:
            return p.render("error.html", 422, message=problem_message(p, exc))
        data["where"] = w
        data["rows"] = [
            {**r, "value": leaderboards.format_value(spec, chosen, r["value"])}
            for r in leaderboards.top(session, w, chosen.size)
        ]
        data["stores"] = spec.stores
    return p.render("leaderboards.html", **data)
