"""Rewards: the catalogue of the programme in force with each reward's stock left, and the
newest claims (at the till and in the app), of one reward or all (``rewards.service``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kopilka.rewards import service as rewards
from kopilka.web.admin.views.shared import SessionDep, UserDep, page

router = APIRouter()


@router.get("/rewards")
def rewards_screen(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    """The catalogue and the newest claims (``reward``: of that reward only)."""
    p = page(request, user, "rewards.view", session)
    only = request.query_params.get("reward") or None
    catalogue = rewards.catalogue(session)
    if only is not None and only not in {r["code"] for r in catalogue}:
        only = None
    claims = rewards.list_claims(session, only, 100)
    return p.render("rewards.html", catalogue=catalogue, claims=claims, only=only)
