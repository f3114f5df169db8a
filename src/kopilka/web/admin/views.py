"""The console's pages under ``/admin``: thin handlers that authorise, call the domain
services and render templates. Every form post carries the session's CSRF token."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter, Depends, FastAPI, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.adjustments import service as adjustments
from kopilka.console import service as console
from kopilka.core.auth import get_session
from kopilka.core.dates import day_error, timestamp_error
from kopilka.core.db import now
from kopilka.core.errors import Problem, serve_not_found_page
from kopilka.security import context
from kopilka.security.identity import client_ip
from kopilka.security.middleware import came_over_tls
from kopilka.web.admin import charts, i18n

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/admin", include_in_schema=False)

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
    "audit": ("admin", "manager"),
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


def _lang(request: Request) -> str:
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
    p = Page(request, _lang(request), user)
    if need is not None and not p.can(need):
        raise PageError(403, "forbidden")
    if session is not None:
        from kopilka.program.service import current_program

        with contextlib.suppress(Problem):
            p.tz = current_program(session).spec.timezone
    return p


def _csrf(user: console.Current, token: str) -> None:
    try:
        console.check_csrf(user, token)
    except Problem as exc:
        raise PageError(403, "csrf_invalid", exc.detail) from exc


def _safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/admin") and not raw.startswith("//"):
        return raw
    return "/admin"


def _set_cookie(response: Response, request: Request, token: str) -> None:
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


def _problem_text(p: Page, exc: Problem) -> str:
    from kopilka.core.errors import TITLES

    en, ru = TITLES.get(exc.code, (exc.code, exc.code))
    return ru if p.lang == "ru" else en


# ---------------------------------------------------------------------------- sign-in

PRE_CSRF = "kopilka_console_pre"


def _pre_token(request: Request) -> str:
    import secrets

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
    import hmac

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
        return _login_page(request, _problem_text(p, exc), status, email=email)
    target = _safe_next(next)
    if stage == "totp":
        target = "/admin/login/totp?" + urlencode({"next": target})
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, request, token)
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
    _csrf(pending, csrf)
    p = page(request, None)
    try:
        new = console.verify_totp(session, token, code, client_ip(request))
    except Problem as exc:
        if exc.code == "account_locked":
            return _login_page(request, _problem_text(p, exc), 423)
        return p.render("totp.html", 401, csrf=pending.csrf, next=next, error=_problem_text(p, exc))
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(response, request, new)
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, user: UserDep, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    _csrf(user, csrf)
    console.sign_out(session, user)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(console.COOKIE, path="/")
    return response


@router.get("")
@router.get("/")
def home(request: Request, user: UserDep) -> Response:
    target = "/admin/dashboards" if user.role in CAN["dashboards"] else "/admin/members"
    return RedirectResponse(target, status_code=303)


# ---------------------------------------------------------------------------- account


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
    _csrf(user, csrf)
    try:
        console.confirm_enrolment(session, user, code)
    except Problem as exc:
        p = page(request, user)
        secret = console.start_enrolment(session, user)
        qr = Markup(  # noqa: S704 - segno's own SVG
            segno.make(console.provisioning_uri(secret, user.email), error="m").svg_inline(scale=4)
        )
        return p.render(
            "account.html", 422, qr=qr, secret=secret, done=None, error=_problem_text(p, exc)
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
    _csrf(user, csrf)
    try:
        console.disable_totp(session, user, password)
    except Problem as exc:
        p = page(request, user)
        return p.render(
            "account.html", 422, qr=None, secret=None, done=None, error=_problem_text(p, exc)
        )
    return RedirectResponse("/admin/account?done=totp_disabled", status_code=303)


# ---------------------------------------------------------------------------- members


def _program_region(session: Session) -> str:
    from kopilka.program.service import current_program

    try:
        return current_program(session).spec.default_phone_region
    except Problem:
        return "RU"


def guess_field(q: str) -> str:
    """What a search box entry most likely is."""
    from kopilka.members.cards import is_valid_card

    s = q.strip()
    digits = "".join(ch for ch in s if ch.isdigit())
    if "@" in s:
        return "email"
    if s.isdigit() and len(s) == 13 and is_valid_card(s):
        return "card"
    if s and all(ch.isdigit() or ch in "+-() " for ch in s) and 10 <= len(digits) <= 15:
        return "phone"
    if any(ch.isdigit() for ch in s):
        return "external_id"
    return "name"


SEARCH_FIELDS = ("phone", "email", "card", "name", "external_id")


@router.get("/members")
def members(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    from kopilka.members import service as members_service

    p = page(request, user, "members.view")
    q = (request.query_params.get("q") or "").strip()[:200]
    by = request.query_params.get("by") or "auto"
    found: list[Any] = []
    error = None
    if q:
        field = guess_field(q) if by not in SEARCH_FIELDS else by
        try:
            rows, _ = members_service.find_members(
                session, _program_region(session), limit=50, **{field: q}
            )
            found = [members_service.to_out(session, m) for m in rows]
        except Problem as exc:
            error = (exc.errors or [{}])[0].get("message") or _problem_text(p, exc)
        if len(found) == 1 and request.query_params.get("go") != "0":
            return RedirectResponse(f"/admin/members/{found[0].id}", status_code=303)  # type: ignore[return-value]
    return p.render(
        "members.html", q=q, by=by, found=found, error=error, fields=("auto", *SEARCH_FIELDS)
    )


def _member_page(
    request: Request,
    session: Session,
    user: console.Current,
    member_id: uuid.UUID,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    from kopilka.ledger import service as ledger
    from kopilka.members import service as members_service
    from kopilka.program.service import current_program
    from kopilka.purchases import service as purchases
    from kopilka.purchases.models import PurchaseReturn

    p = page(request, user, "members.view", session)
    try:
        member = members_service.get_member(session, member_id)
    except Problem as exc:
        raise PageError(404, "not_found") from exc
    out = members_service.to_out(session, member)
    history, next_cursor = ledger.history(
        session, member_id, cursor=request.query_params.get("ledger_after"), limit=50
    )
    bought, _ = purchases.list_purchases(session, member_id=member_id, limit=30)
    ids = [uuid.UUID(b["id"]) for b in bought]
    returns: dict[str, list[PurchaseReturn]] = {}
    if ids:
        for r in session.execute(
            select(PurchaseReturn)
            .where(PurchaseReturn.purchase_id.in_(ids))
            .order_by(PurchaseReturn.created_at)
        ).scalars():
            returns.setdefault(str(r.purchase_id), []).append(r)
    try:
        currencies = [c.code for c in current_program(session).spec.currencies]
    except Problem:
        currencies = []
    consent_log = []
    history_of = getattr(members_service, "consent_history", None)
    if history_of is not None:
        consent_log = history_of(session, member_id)
    from kopilka.tiers import service as tiers

    tier = tiers.status(session, member_id, history_limit=20)
    tier_levels = tiers.setup(session)
    from kopilka.coupons import queries as coupons

    member_coupons, _ = coupons.member_coupons(session, member_id, limit=50)
    waiting, _ = adjustments.list_adjustments(session, member_id=member_id, limit=50)
    data: dict[str, Any] = {"app_link": None, "contact_error": None, "contact_done": None}
    data.update(extra)
    return p.render(
        "member.html",
        status,
        member=out,
        tier=tier,
        tier_levels=tier_levels.tiers.levels if tier_levels else [],
        balances=ledger.balances(session, member_id),
        history=history,
        ledger_next=next_cursor,
        purchases=bought,
        returns=returns,
        currencies=currencies,
        consent_log=consent_log,
        coupons=member_coupons,
        pending_adjustments=waiting,
        done=request.query_params.get("done"),
        form_key=uuid.uuid4().hex,
        **data,
    )


@router.get("/members/{member_id}")
def member(
    request: Request, member_id: uuid.UUID, session: SessionDep, user: UserDep
) -> HTMLResponse:
    return _member_page(request, session, user, member_id, form_error=None, form={})


@router.post("/members/{member_id}/adjust")
def member_adjust(
    request: Request,
    member_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    currency: Annotated[str, Form(max_length=16)],
    amount: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=200)],
    key: Annotated[str, Form(max_length=64)],
) -> Response:
    _csrf(user, csrf)
    p = page(request, user, "members.adjust")
    form = {"currency": currency, "amount": amount, "reason": reason}
    try:
        try:
            value = Decimal(amount.strip().replace(",", ".").replace(" ", ""))
        except InvalidOperation as exc:
            raise Problem(
                422,
                "validation_error",
                errors=[{"field": "amount", "code": "decimal", "message": "a number"}],
            ) from exc
        done = adjustments.request(
            session,
            member_id=member_id,
            currency=currency,
            amount=value,
            reason=reason,
            actor=user.actor,
            # one form, one adjustment: a double click or a resent form changes nothing
            key=f"adjust:{user.actor}:console:{key}",
        )
        session.commit()
    except Problem as exc:
        session.rollback()
        message = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or []) or (
            exc.detail or _problem_text(p, exc)
        )
        return _member_page(
            request, session, user, member_id, form_error=message, form=form, status=422
        )
    outcome = "adjusted" if done.adjustment is None else "adjust_pending"
    return RedirectResponse(f"/admin/members/{member_id}?done={outcome}", status_code=303)


# ---------------------------------------------------------------------------- approvals


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
    target = _safe_next(next_url) if next_url else "/admin/adjustments"
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
    _csrf(user, csrf)
    p = page(request, user, "adjustments.review")
    try:
        adjustments.approve(session, adjustment_id, user.actor)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _adjustments_page(request, session, user, exc.status, _problem_message(p, exc))
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
    _csrf(user, csrf)
    p = page(request, user, "adjustments.review")
    try:
        adjustments.reject(session, adjustment_id, user.actor, reason)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _adjustments_page(request, session, user, exc.status, _problem_message(p, exc))
    return _back(next, "adjust_rejected")


@router.post("/members/{member_id}/status")
def member_status(
    request: Request,
    member_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    status: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=200)],
    reason: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    from kopilka.members import service as members_service

    _csrf(user, csrf)
    page(request, user, "members.status")
    try:
        members_service.set_status(session, member_id, status, user.actor, reason or None)
        session.commit()
    except Problem as exc:
        session.rollback()
        raise PageError(exc.status, "not_found" if exc.status == 404 else exc.code) from exc
    return RedirectResponse(f"/admin/members/{member_id}?done=status_changed", status_code=303)


@router.post("/members/{member_id}/tier")
def member_tier(
    request: Request,
    member_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=500)],
    tier: Annotated[str, Form(max_length=32)] = "",
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """A manual tier (a floor) until the end of a day in the programme's time zone, or
    for good; an empty tier clears it."""
    from kopilka.tiers import service as tiers

    _csrf(user, csrf)
    p = page(request, user, "members.tier", session)
    form = {"tier": tier, "until": until, "tier_reason": reason}
    try:
        ends = None
        if until.strip():
            try:
                day = dt.date.fromisoformat(until.strip())
            except ValueError as exc:
                raise Problem(
                    422,
                    "validation_error",
                    errors=[{"field": "until", "code": "date", "message": "a date YYYY-MM-DD"}],
                ) from exc
            if (error := day_error(day)) is not None:
                raise Problem(
                    422,
                    "validation_error",
                    errors=[{"field": "until", "code": error[0], "message": error[1]}],
                )
            # the floor lasts through that whole day, local time
            ends = dt.datetime.combine(
                day + dt.timedelta(days=1), dt.time(), zoneinfo.ZoneInfo(p.tz)
            ).astimezone(dt.UTC)
        if len(reason.strip()) < 3:
            raise Problem(
                422,
                "validation_error",
                errors=[{"field": "reason", "code": "too_short", "message": "say why"}],
            )
        tiers.set_floor(session, member_id, tier or None, ends, reason.strip(), user.actor)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        message = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or []) or (
            exc.detail or _problem_text(p, exc)
        )
        return _member_page(
            request,
            session,
            user,
            member_id,
            form_error=None,
            form={},
            tier_error=message,
            tier_form=form,
            status=422,
        )
    return RedirectResponse(f"/admin/members/{member_id}?done=tier_set", status_code=303)


def _contact(member: Any, via: str) -> tuple[str, str]:
    """Where to send a message to the member: ``("sms", phone)`` or ``("email", email)``;
    ``via`` picks one (empty: the phone if there is one). 422 naming ``via`` otherwise."""
    phone, email = getattr(member, "phone", None), getattr(member, "email", None)
    if via in ("", "sms") and phone:
        return "sms", str(phone)
    if via in ("", "email") and email:
        return "email", str(email)
    raise Problem(
        422,
        "validation_error",
        errors=[{"field": "via", "code": "missing", "message": "the member has no such contact"}],
    )


def _send(kind: str, destination: str, code: str, lang: str, text: str) -> str | None:
    """Deliver a message through the member-code channel the member app uses for sign-in
    codes (``KOPILKA_MEMBER_CODE_CHANNEL``); the error's name when it failed."""
    import structlog

    from kopilka.memberapp import service as memberapp

    try:
        memberapp.deliver_code(memberapp.CodeMessage(kind, destination, code, lang, text))
    except Exception as exc:  # a channel's failure must not lose the page
        structlog.get_logger("kopilka.console").warning(
            "console.delivery_failed", channel=kind, error=type(exc).__name__
        )
        return type(exc).__name__
    return None


def _app_name(session: Session) -> str:
    from kopilka.program.service import current_program

    try:
        spec = current_program(session).spec
    except Problem:
        return "Kopilka"
    return spec.branding.app_name or spec.name


def _problem_message(p: Page, exc: Problem) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or []) or (
        exc.detail or _problem_text(p, exc)
    )


def _contact_target(
    request: Request, session: Session, user: Any, member_id: uuid.UUID, csrf: str, lang: str
) -> tuple[Page, str, Any]:
    """What both contact actions start with: the CSRF check, the page, the language of the
    message (the operator's unless chosen) and the member (404 if unknown)."""
    from kopilka.members import service as members_service

    _csrf(user, csrf)
    p = page(request, user, "members.contact", session)
    try:
        member = members_service.get_member(session, member_id)
    except Problem as exc:
        raise PageError(404, "not_found") from exc
    return p, lang if lang in i18n.LANGS else p.lang, member


@router.post("/members/{member_id}/app-link")
def member_app_link(
    request: Request,
    member_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    via: Annotated[str, Form(max_length=8)] = "",
    lang: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    """Make a one-time sign-in link into the member app (as ``POST
    /api/v1/members/{id}/app-link``), send it to the member's phone or email and show it
    to the operator. The link itself never goes into a URL: the page is the answer."""
    from kopilka.audit.service import record
    from kopilka.core.config import get_settings
    from kopilka.memberapp import service as memberapp

    p, lang, member = _contact_target(request, session, user, member_id, csrf, lang)
    try:
        kind, destination = _contact(member, via)
        base = get_settings().public_url or str(request.base_url)
        url, expires_at = memberapp.issue_app_link(session, member_id, user.actor, base)
        session.commit()
    except Problem as exc:
        session.rollback()
        return _member_page(
            request,
            session,
            user,
            member_id,
            status=422,
            form_error=None,
            form={},
            contact_error=_problem_message(p, exc),
        )
    minutes = int(memberapp.LINK_TTL.total_seconds() // 60)
    text = i18n.translator(lang)("message_app_link").format(
        url=url, app=_app_name(session), minutes=minutes
    )
    failed = _send(kind, destination, url, lang, text)
    to = memberapp.mask(kind, destination)
    record(
        session,
        user.actor,
        "member.app_link_sent",
        "member",
        str(member_id),
        details={
            "via": kind,
            "to": to,
            "expires_at": expires_at.isoformat(),
            "delivered": failed is None,
            **({"error": failed} if failed else {}),
        },
    )
    session.commit()
    return _member_page(
        request,
        session,
        user,
        member_id,
        form_error=None,
        form={},
        app_link={
            "url": url,
            "expires_at": expires_at,
            "to": to,
            # the same QR code the till shows, for a customer standing by the operator
            "qr": Markup(segno.make(url, error="m").svg_inline(scale=3)),  # noqa: S704
        },
        contact_done=None if failed else "app_link_sent",
        contact_error=p.t("delivery_failed") if failed else None,
    )


@router.post("/members/{member_id}/card")
def member_card(
    request: Request,
    member_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    via: Annotated[str, Form(max_length=8)] = "",
    lang: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    """Send the member their card number again, through the same channel as sign-in
    codes, to their phone or email."""
    from kopilka.audit.service import record
    from kopilka.memberapp import service as memberapp

    p, lang, member = _contact_target(request, session, user, member_id, csrf, lang)
    try:
        if member.status == "erased":
            raise Problem(409, "member_erased", f"member {member_id} is erased")
        kind, destination = _contact(member, via)
    except Problem as exc:
        return _member_page(
            request,
            session,
            user,
            member_id,
            status=exc.status if exc.status in (409, 422) else 422,
            form_error=None,
            form={},
            contact_error=_problem_message(p, exc),
        )
    card = member.card_number
    text = i18n.translator(lang)("message_card").format(card=card, app=_app_name(session))
    failed = _send(kind, destination, card, lang, text)
    record(
        session,
        user.actor,
        "member.card_sent",
        "member",
        str(member_id),
        details={
            "via": kind,
            "to": memberapp.mask(kind, destination),
            "delivered": failed is None,
            **({"error": failed} if failed else {}),
        },
    )
    session.commit()
    if failed:
        return _member_page(
            request,
            session,
            user,
            member_id,
            form_error=None,
            form={},
            contact_error=p.t("delivery_failed"),
        )
    return RedirectResponse(f"/admin/members/{member_id}?done=card_sent", status_code=303)


# ---------------------------------------------------------------------------- programme


def _programme_page(
    request: Request, session: Session, user: console.Current, status: int = 200, **extra: Any
) -> HTMLResponse:
    from kopilka.console.simulate import sample_receipt
    from kopilka.program.models import ProgramVersion
    from kopilka.program.service import current_program, export_program

    p = page(request, user, "programme.view", session)
    try:
        text = export_program(session)
        spec = current_program(session).spec
        receipt = sample_receipt(spec)
    except Problem:
        text, receipt = "", "{}"
    versions = list(
        session.execute(
            select(
                ProgramVersion.version,
                ProgramVersion.name,
                ProgramVersion.applied_at,
                ProgramVersion.applied_by,
            )
            .order_by(ProgramVersion.version.desc())
            .limit(20)
        ).all()
    )
    data = {
        "yaml": text,
        "draft": text,
        "receipt": receipt,
        "versions": versions,
        "errors": None,
        "result": None,
        "simulation": None,
        "done": request.query_params.get("done"),
    }
    data.update(extra)
    return p.render("programme.html", status, **data)


@router.get("/programme")
def programme(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    return _programme_page(request, session, user)


async def _draft_text(draft: str | None, file: UploadFile | None) -> str:
    if file is not None and file.filename:
        raw = await file.read(1_000_001)
        if len(raw) > 1_000_000:
            raise Problem(
                422,
                "program_invalid",
                errors=[{"field": "$", "code": "size", "message": "at most 1 MB"}],
            )
        return raw.decode("utf-8", errors="replace")
    return draft or ""


@router.post("/programme")
async def programme_action(
    request: Request,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    action: Annotated[str, Form(max_length=16)],
    draft: Annotated[str | None, Form(max_length=1_000_000)] = None,
    receipt: Annotated[str | None, Form(max_length=100_000)] = None,
    file: UploadFile | None = None,
) -> Response:
    """``action``: ``simulate`` (validate the draft and dry-run its rules on the sample
    receipt) or ``publish`` (apply it as the new version, audited with before/after)."""
    from starlette.concurrency import run_in_threadpool

    _csrf(user, csrf)
    need = "programme.apply" if action == "publish" else "programme.view"
    page(request, user, need)
    text = await _draft_text(draft, file)

    def work() -> Response:
        from kopilka.console.simulate import simulate
        from kopilka.program import service as program

        try:
            spec = program.parse_program(text)
            if action == "publish":
                # apply_program writes the audit row (versions and what changed)
                result = program.apply_program(session, spec, user.actor)
                session.commit()
                done = "applied" if result.changed else "unchanged"
                return RedirectResponse(
                    f"/admin/programme?done={done}:{result.version}", status_code=303
                )
            sim = simulate(spec, receipt or "{}")
        except Problem as exc:
            session.rollback()
            return _programme_page(
                request,
                session,
                user,
                422,
                draft=text,
                receipt=receipt or "{}",
                errors=exc.errors or [{"field": "$", "message": exc.detail or exc.code}],
            )
        return _programme_page(
            request, session, user, draft=text, receipt=receipt or "{}", simulation=sim
        )

    return await run_in_threadpool(work)


# ---------------------------------------------------------------------------- dashboards


def _filters(request: Request, session: Session) -> tuple[Any, Any]:
    from kopilka.program.service import current_program
    from kopilka.reports import service as reports

    spec = current_program(session).spec
    today = now().astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    qp = request.query_params
    f = reports.parse_filters(
        spec,
        today,
        start=qp.get("from"),
        end=qp.get("to"),
        store=qp.get("store"),
        channel=qp.get("channel"),
        tier=qp.get("tier"),
        grain=qp.get("grain"),
    )
    return spec, f


def _label(b: dt.date, grain: str, lang: str) -> str:
    if grain == "month":
        return b.strftime("%m.%Y" if lang == "ru" else "%Y-%m")
    return b.strftime("%d.%m" if lang == "ru" else "%m-%d")


@router.get("/dashboards")
def dashboards(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    from kopilka.reports import service as reports
    from kopilka.reports.rollup import last_run

    p = page(request, user, "dashboards", session)
    try:
        spec, f = _filters(request, session)
    except Problem as exc:
        return p.render(
            "error.html",
            422,
            message="; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
            or _problem_text(p, exc),
        )
    out = {name: reports.run(session, name, f) for name in reports.REPORTS}
    t = p.t
    labels = [_label(b, f.grain, p.lang) for b in f.buckets()]

    def num(v: Decimal) -> str:
        return i18n.fmt_number(v, p.lang, 0 if abs(v) >= 100 or v == v.to_integral_value() else 2)

    def pct(v: Decimal) -> str:
        return i18n.fmt_percent(v, p.lang, 0)

    rec = out["receipts"]
    pts = out["points"]
    liab = out["liability"]
    coh = out["cohorts"]
    charts_: dict[str, Markup] = {
        "acquisition": charts.bar_chart(
            "acquisition",
            t("acquisition"),
            labels,
            [charts.Series(t("members"), [r[1] for r in out["acquisition"].rows])],
            num,
        ),
        "card_share": charts.line_chart(
            "card-share",
            t("card_share"),
            labels,
            [charts.Series(t("card_share"), [r[3] for r in rec.rows])],
            pct,
        ),
        "avg_receipt": charts.line_chart(
            "avg-receipt",
            t("avg_receipt"),
            labels,
            [
                charts.Series(t("avg_members"), [r[6] for r in rec.rows]),
                charts.Series(t("avg_anonymous"), [r[7] for r in rec.rows]),
            ],
            num,
        ),
    }
    for cur in spec.currencies:
        rows = [r for r in pts.rows if r[1] == cur.code]
        charts_[f"points_{cur.code}"] = charts.bar_chart(
            f"points-{cur.code}",
            f"{t('points')} {cur.code}",
            labels,
            [
                charts.Series(t("issued"), [r[2] for r in rows]),
                charts.Series(t("redeemed"), [r[3] for r in rows]),
                charts.Series(t("expired"), [r[4] for r in rows]),
            ],
            num,
        )
    charts_["liability"] = charts.line_chart(
        "liability",
        t("liability"),
        labels,
        [
            charts.Series(cur.code, [r[3] for r in liab.rows if r[1] == cur.code])
            for cur in spec.currencies
            if cur.value > 0
        ],
        num,
    )
    cohorts_rows = sorted({r[0] for r in coh.rows})
    horizon = max([r[2] for r in coh.rows], default=0) + 1
    grid = [
        [next((r[4] for r in coh.rows if r[0] == c and r[2] == k), None) for k in range(horizon)]
        for c in cohorts_rows
    ]
    charts_["cohorts"] = charts.heatmap(
        "cohorts",
        t("cohorts"),
        [_label(c, "month", p.lang) for c in cohorts_rows],
        [str(k) for k in range(horizon)],
        grid,
        pct,
    )
    tiers_rep = out["tiers"]
    charts_["tiers"] = charts.bar_chart(
        "tiers",
        t("tiers"),
        [r[0] or t("no_tier") for r in tiers_rep.rows],
        [charts.Series(t("members"), [r[1] for r in tiers_rep.rows])],
        num,
    )
    moves = out["tier_movement"]
    charts_["tier_movement"] = charts.bar_chart(
        "tier-movement",
        t("tier_movement"),
        labels,
        [
            charts.Series(t("upgrades"), [r[2] for r in moves.rows]),
            charts.Series(t("downgrades"), [r[3] for r in moves.rows]),
            charts.Series(t("manual_changes"), [r[4] for r in moves.rows]),
            charts.Series(t("program_changed_changes"), [r[5] for r in moves.rows]),
        ],
        num,
        stacked=True,
    )
    camp = out["campaigns"]
    col = {c: i for i, c in enumerate(camp.columns)}
    camp_labels = [str(r[col["name"]] or r[col["campaign"]]) for r in camp.rows]
    charts_["campaign_cost"] = charts.bar_chart(
        "campaign-cost",
        t("campaign_cost"),
        camp_labels,
        [
            charts.Series(t("points_value"), [r[col["points_value"]] for r in camp.rows]),
            charts.Series(t("discounts"), [r[col["discounts"]] for r in camp.rows]),
        ],
        num,
        stacked=True,
    )
    charts_["campaign_lift"] = charts.diverging_bars(
        "campaign-lift",
        t("campaign_lift"),
        camp_labels,
        [r[col["lift"]] for r in camp.rows],
        pct,
    )
    campaign_rows = [dict(zip(camp.columns, r, strict=True)) for r in camp.rows]
    roi = out["roi"].summary
    charts_["roi"] = charts.interval_chart(
        "roi", t("roi"), roi.get("roi"), roi.get("roi_low"), roi.get("roi_high"), pct
    )
    query = {
        k: v
        for k, v in request.query_params.items()
        if k in ("from", "to", "store", "channel", "tier", "grain")
    }
    return p.render(
        "dashboards.html",
        f=f,
        spec=spec,
        out=out,
        charts=charts_,
        campaigns=campaign_rows,
        ignored={name: rep.ignored_filters() for name, rep in out.items()},
        tier_names={lv.code: lv.name for lv in spec.tiers.levels} if spec.tiers else {},
        tiers=reports.known_tiers(session),
        query=urlencode(query),
        rolled_up_at=last_run(session),
    )


@router.get("/reports/{name}.csv")
def report_csv(request: Request, name: str, session: SessionDep, user: UserDep) -> Response:
    from kopilka.reports import service as reports
    from kopilka.reports.api import csv_response

    page(request, user, "dashboards")
    try:
        _, f = _filters(request, session)
        return csv_response(reports.run(session, name, f))
    except Problem as exc:
        raise PageError(
            exc.status, "not_found" if exc.status == 404 else exc.code, exc.detail
        ) from exc


# ---------------------------------------------------------------------------- audit


@router.get("/audit")
def audit(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    from kopilka.audit.models import AuditEntry

    p = page(request, user, "audit", session)
    qp = request.query_params
    q = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    if qp.get("action"):
        q = q.where(AuditEntry.action.like(qp["action"].replace("%", "") + "%"))
    if qp.get("target"):
        q = q.where(AuditEntry.target_id == qp["target"])
    if qp.get("actor"):
        q = q.where(AuditEntry.actor == qp["actor"])
    if qp.get("before"):
        with contextlib.suppress(ValueError):
            before = dt.datetime.fromisoformat(qp["before"])
            if before.tzinfo is None:
                before = before.replace(tzinfo=dt.UTC)
            if timestamp_error(before) is None:  # else ignored, as what does not parse is
                q = q.where(AuditEntry.occurred_at < before)
    rows = list(session.execute(q.limit(51)).scalars())
    more = rows[50].occurred_at.isoformat() if len(rows) > 50 else None
    base = {k: v for k, v in qp.items() if k in ("action", "target", "actor")}
    return p.render(
        "audit.html",
        entries=rows[:50],
        filters=base,
        next_url=("/admin/audit?" + urlencode({**base, "before": more})) if more else None,
        as_json=lambda v: json.dumps(v, ensure_ascii=False, indent=1, sort_keys=True),
    )


# ---------------------------------------------------------------------------- wiring


def _error_page(request: Request, exc: PageError) -> HTMLResponse:
    p = Page(request, _lang(request), None)
    message = (
        p.t(exc.key) if exc.key in i18n.MESSAGES else _problem_text(p, Problem(exc.status, exc.key))
    )
    return p.render("error.html", exc.status, message=message, detail=exc.detail)


def mount(app: FastAPI) -> None:
    """Serve the console at ``/admin`` (pages, static files, its error pages) and let its
    sessions call ``/api/v1`` (``kopilka.security.identity``)."""
    from kopilka.console.auth import register

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

    register()
