"""Signing in and out of the console (password, then TOTP when the user has one), and
the home page."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kopilka.console import service as console
from kopilka.core.errors import Problem
from kopilka.security.identity import client_ip
from kopilka.security.middleware import came_over_tls
from kopilka.web.admin.views.shared import (
    CAN,
    PageError,
    SessionDep,
    UserDep,
    check_csrf,
    page,
    problem_text,
    safe_next,
    set_session_cookie,
)

router = APIRouter()


PRE_CSRF = "kopilka_console_pre"


def _pre_token(request: Request) -> str:
    return request.cookies.get(PRE_CSRF) or secrets.token_urlsafe(24)


def _login_page(
    request: Request, error: str | None = None, status: int = 200, **extra: Any
) -> HTMLResponse:
    p = page(request, None)
    token = _pre_token(request)
    response = p.render(
        "login.html",
        status,
        error=error,
        pre_csrf=token,
        next=request.query_params.get("next"),
        **extra,
    )
    response.set_cookie(
        PRE_CSRF,
        token,
        httponly=True,
        secure=came_over_tls(request.scope),
        samesite="strict",
        path="/admin",
    )
    return response


def _check_pre(request: Request, supplied: str) -> None:
    cookie = request.cookies.get(PRE_CSRF)
    if not cookie or not hmac.compare_digest(cookie.encode(), supplied.encode()):
        raise PageError(403, "csrf_invalid")


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    _check_pre(request, csrf)
    p = page(request, None)
    try:
        token, stage = console.sign_in(
            session, email, password, client_ip(request), request.headers.get("user-agent")
        )
    except Problem as exc:
        status = 423 if exc.code == "account_locked" else 401
        return _login_page(request, problem_text(p, exc), status, email=email)
    target = safe_next(next)
    if stage == "totp":
        target = "/admin/login/totp?" + urlencode({"next": target})
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token)
    return response


@router.get("/login/totp")
def totp_form(request: Request, session: SessionDep) -> Response:
    pending = console.load(session, request.cookies.get(console.COOKIE), stage="totp")
    if pending is None:
        return RedirectResponse("/admin/login", status_code=303)
    return page(request, None).render(
        "totp.html", csrf=pending.csrf, next=request.query_params.get("next"), error=None
    )


@router.post("/login/totp")
def totp(
    request: Request,
    session: SessionDep,
    code: Annotated[str, Form(max_length=20)],
    csrf: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    token = request.cookies.get(console.COOKIE)
    pending = console.load(session, token, stage="totp")
    if pending is None or token is None:
        return RedirectResponse("/admin/login", status_code=303)
    check_csrf(pending, csrf)
    p = page(request, None)
    try:
        new = console.verify_totp(session, token, code, client_ip(request))
    except Problem as exc:
        if exc.code == "account_locked":
            return _login_page(request, problem_text(p, exc), 423)
        return p.render("totp.html", 401, csrf=pending.csrf, next=next, error=problem_text(p, exc))
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, new)
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, user: UserDep, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    check_csrf(user, csrf)
    console.sign_out(session, user)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(console.COOKIE, path="/")
    return response


@router.get("")
@router.get("/")
def home(request: Request, user: UserDep) -> Response:
    target = "/admin/dashboards" if user.role in CAN["dashboards"] else "/admin/members"
    return RedirectResponse(target, status_code=303)
