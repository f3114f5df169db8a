"""The console's pages under ``/admin``: thin handlers that authorise, call the domain
services and render templates, a module per screen. Every form post carries the session's
CSRF token. This module assembles the screens' routers (in the order a request is matched
against them) and mounts the console on the app."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from kopilka.core.errors import Problem, serve_not_found_page
from kopilka.web.admin import i18n
from kopilka.web.admin.views import (
    account,
    approvals,
    audit,
    challenges,
    dashboards,
    leaderboards,
    members,
    programme,
    referrals,
    rewards,
    signin,
)
from kopilka.web.admin.views.shared import (
    HERE,
    LoginRequired,
    Page,
    PageError,
    page_lang,
    problem_text,
)

SCREENS = (
    signin,
    account,
    members,
    approvals,
    referrals,
    challenges,
    programme,
    dashboards,
    audit,
    leaderboards,
    rewards,
)

router = APIRouter()
for screen in SCREENS:
    router.include_router(screen.router, prefix="/admin", include_in_schema=False)


def _error_page(request: Request, exc: PageError) -> HTMLResponse:
    p = Page(request, page_lang(request), None)
    message = (
        p.t(exc.key) if exc.key in i18n.MESSAGES else problem_text(p, Problem(exc.status, exc.key))
    )
    return p.render("error.html", exc.status, message=message, detail=exc.detail)


def mount(app: FastAPI) -> None:
    """Serve the console at ``/admin``: pages, static files, its error pages (its sessions
    call ``/api/v1`` through the authenticator ``kopilka.wiring`` registers)."""
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="admin-static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/admin/login?next=" + quote(exc.next_url), status_code=303)

    @app.exception_handler(PageError)
    async def _error(request: Request, exc: PageError) -> Response:
        return _error_page(request, exc)

    # an id in a page's path that is not a UUID: the page an unknown id gets
    serve_not_found_page(app, "/admin/", lambda r: _error_page(r, PageError(404, "not_found")))
