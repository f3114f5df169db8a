"""What every console screen shares: the templates, who may do what (``CAN``), the
signed-in user, the ``Page`` a template gets, CSRF and the errors a page answers."""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from kopilka.console import service as console
from kopilka.core import context
from kopilka.core.auth import get_session
from kopilka.core.errors import TITLES, Problem
from kopilka.program.service import current_program
from kopilka.security.middleware import came_over_tls
from kopilka.web.admin import i18n

HERE = Path(__file__).resolve().parents[1]  # web/admin: templates/ and static/
templates = Jinja2Templates(directory=HERE / "templates")

SessionDep = Annotated[Session, Depends(get_session)]

# Who may do what in the console (docs/console.md has the same table).
CAN = {
    "members.view": ("admin", "manager", "analyst", "support"),
    "members.adjust": ("admin", "manager", "support"),
    # approve or reject adjustments above their currency's ceiling (not one's own)
    "adjustments.review": ("admin", "manager"),
    "members.status": ("admin", "manager", "support"),
    "members.tier": ("admin", "manager"),
    "members.contact": ("admin", "manager", "support"),
    "programme.view": ("admin", "manager", "analyst"),
    "programme.apply": ("admin", "manager"),
    "dashboards": ("admin", "manager", "analyst"),
    # the referrals' dashboard, and their review queue (as the API's reviewers)
    "referrals.dashboard": ("admin", "manager", "analyst"),
    "referrals.review": ("admin", "manager", "support"),
    "audit": ("admin", "manager"),
    # --- leaderboards ---
    "leaderboards.view": ("admin", "manager", "analyst", "support"),
}


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageError(Exception):
    def __init__(self, status: int, key: str, detail: str | None = None) -> None:
        self.status, self.key, self.detail = status, key, detail


@dataclass
class Page:
    """What every template gets: the request, language, words, user and CSRF token."""

    request: Request
    lang: str
    user: console.Current | None
    tz: str = "UTC"  # moments are shown in the programme's time zone

    @property
    def t(self) -> Callable[[str], str]:
        return i18n.translator(self.lang)

    def can(self, what: str) -> bool:
        return self.user is not None and self.user.role in CAN[what]

    def num(self, value: Any, places: int = 2) -> str:
        return i18n.fmt_number(None if value is None else Decimal(str(value)), self.lang, places)

    def pct(self, value: Any) -> str:
        return i18n.fmt_percent(None if value is None else Decimal(str(value)), self.lang)

    def moment(self, value: Any) -> str:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(zoneinfo.ZoneInfo(self.tz))
        return i18n.fmt_moment(value, self.lang)

    def day(self, value: Any) -> str:
        return i18n.fmt_day(value, self.lang)

    def render(self, name: str, status: int = 200, **data: Any) -> HTMLResponse:
        ctx = {"page": self, "t": self.t, "user": self.user, **data}
        response = templates.TemplateResponse(self.request, name, ctx, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = self.lang
        return response


def page_lang(request: Request) -> str:
    return i18n.pick_lang(request.headers.get("accept-language"))


def _facts(current: console.Current) -> None:
    facts = context.current()
    if facts is not None:
        facts.principal = current.principal


def signed_in(request: Request, session: SessionDep) -> console.Current:
    current = console.load(session, request.cookies.get(console.COOKIE))
    if current is None:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(nxt)
    _facts(current)
    return current


UserDep = Annotated[console.Current, Depends(signed_in)]


def page(
    request: Request,
    user: console.Current | None,
    need: str | None = None,
    session: Session | None = None,
) -> Page:
    p = Page(request, page_lang(request), user)
    if need is not None and not p.can(need):
        raise PageError(403, "forbidden")
    if session is not None:
        with contextlib.suppress(Problem):
            p.tz = current_program(session).spec.timezone
    return p


def check_csrf(user: console.Current, token: str) -> None:
    try:
        console.check_csrf(user, token)
    except Problem as exc:
        raise PageError(403, "csrf_invalid", exc.detail) from exc


def safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/admin") and not raw.startswith("//"):
        return raw
    return "/admin"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        console.COOKIE,
        token,
        httponly=True,
        # over TLS, directly or behind a proxy that says so (as the member app and HSTS)
        secure=came_over_tls(request.scope),
        samesite="strict",
        path="/",
        max_age=int(console.LIFETIME.total_seconds()),
    )


def problem_text(p: Page, exc: Problem) -> str:
    en, ru = TITLES.get(exc.code, (exc.code, exc.code))
    return ru if p.lang == "ru" else en


def problem_message(p: Page, exc: Problem) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or []) or (
        exc.detail or problem_text(p, exc)
    )


# --- rewards ---
CAN["rewards.view"] = ("admin", "manager", "analyst", "support")
# --- challenges ---
# the challenges' list and figures, the form's check and simulation (publishing a
# challenge is ``programme.apply``)
CAN["challenges.view"] = ("admin", "manager", "analyst")
