"""Adjustments waiting for a second person: listed, approved, rejected."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from kopilka.adjustments import service as adjustments
from kopilka.console import service as console
from kopilka.core.errors import Problem
from kopilka.web.admin.views.shared import (
    PageError,
    SessionDep,
    UserDep,
    check_csrf,
    page,
    problem_message,
    safe_next,
)

router = APIRouter()


def _adjustments_page(
    request: Request,
    session: Session,
    user: console.Current,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    p = page(request, user, "members.adjust", session)
    waiting, _ = adjustments.list_adjustments(session, limit=200)
    return p.render(
        "adjustments.html",
        status,
        pending_adjustments=waiting,
        done=request.query_params.get("done"),
        error=error,
    )


@router.get("/adjustments")
def adjustments_list(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    """Adjustments waiting for a second person, oldest requests last."""
    return _adjustments_page(request, session, user)


def _back(next_url: str | None, done: str) -> RedirectResponse:
    target = safe_next(next_url) if next_url else "/admin/adjustments"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}done={done}", status_code=303)


@router.post("/adjustments/{adjustment_id}/approve")
def adjustment_approve(
    request: Request,
    adjustment_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    check_csrf(user, csrf)
    p = page(request, user, "adjustments.review")
    try:
        adjustments.approve(session, adjustment_id, user.actor)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _adjustments_page(request, session, user, exc.status, problem_message(p, exc))
    return _back(next, "adjust_approved")


@router.post("/adjustments/{adjustment_id}/reject")
def adjustment_reject(
    request: Request,
    adjustment_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=500)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    check_csrf(user, csrf)
    p = page(request, user, "adjustments.review")
    try:
        adjustments.reject(session, adjustment_id, user.actor, reason)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _adjustments_page(request, session, user, exc.status, problem_message(p, exc))
    return _back(next, "adjust_rejected")
