"""The signed-in user's own account: TOTP set up and switched off."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from kopilka.console import service as console
from kopilka.core.errors import Problem
from kopilka.web.admin.views.shared import SessionDep, UserDep, check_csrf, page, problem_text

router = APIRouter()


@router.get("/account")
def account(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user)
    qr = secret = None
    if not user.has_totp:
        secret = console.start_enrolment(session, user)
        uri = console.provisioning_uri(secret, user.email)
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, dark="#111827"))  # noqa: S704
    return p.render(
        "account.html", qr=qr, secret=secret, done=request.query_params.get("done"), error=None
    )


@router.post("/account/totp")
def account_totp(
    request: Request,
    session: SessionDep,
    user: UserDep,
    code: Annotated[str, Form(max_length=20)],
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    check_csrf(user, csrf)
    try:
        console.confirm_enrolment(session, user, code)
    except Problem as exc:
        p = page(request, user)
        secret = console.start_enrolment(session, user)
        qr = Markup(  # noqa: S704 - segno's own SVG
            segno.make(console.provisioning_uri(secret, user.email), error="m").svg_inline(scale=4)
        )
        return p.render(
            "account.html", 422, qr=qr, secret=secret, done=None, error=problem_text(p, exc)
        )
    return RedirectResponse("/admin/account?done=totp_enabled", status_code=303)


@router.post("/account/totp/disable")
def account_totp_disable(
    request: Request,
    session: SessionDep,
    user: UserDep,
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)],
) -> Response:
    check_csrf(user, csrf)
    try:
        console.disable_totp(session, user, password)
    except Problem as exc:
        p = page(request, user)
        return p.render(
            "account.html", 422, qr=None, secret=None, done=None, error=problem_text(p, exc)
        )
    return RedirectResponse("/admin/account?done=totp_disabled", status_code=303)
