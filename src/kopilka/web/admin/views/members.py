"""The member screens: search, a member's page, and what an operator does there
(adjust, status, tier, app link, card)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import segno
import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from kopilka.adjustments import service as adjustments
from kopilka.audit.service import record
from kopilka.console import service as console
from kopilka.core.config import get_settings
from kopilka.core.dates import day_error
from kopilka.core.errors import Problem
from kopilka.coupons import queries as coupons
from kopilka.ledger import service as ledger
from kopilka.memberapp import service as memberapp
from kopilka.members import service as members_service
from kopilka.members.cards import is_valid_card
from kopilka.program.service import current_program
from kopilka.purchases import queries as purchases
from kopilka.purchases.queries import returns_by_purchase
from kopilka.tiers import service as tiers
from kopilka.web.admin import i18n
from kopilka.web.admin.views.shared import (
    Page,
    PageError,
    SessionDep,
    UserDep,
    check_csrf,
    page,
    problem_message,
    problem_text,
)

router = APIRouter()


def _program_region(session: Session) -> str:
    try:
        return current_program(session).spec.default_phone_region
    except Problem:
        return "RU"


def guess_field(q: str) -> str:
    """What a search box entry most likely is."""
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
            error = (exc.errors or [{}])[0].get("message") or problem_text(p, exc)
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
    returns = returns_by_purchase(session, ids)
    try:
        currencies = [c.code for c in current_program(session).spec.currencies]
    except Problem:
        currencies = []
    consent_log = []
    history_of = getattr(members_service, "consent_history", None)
    if history_of is not None:
        consent_log = history_of(session, member_id)

    tier = tiers.status(session, member_id, history_limit=20)
    tier_levels = tiers.setup(session)

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
    check_csrf(user, csrf)
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
            exc.detail or problem_text(p, exc)
        )
        return _member_page(
            request, session, user, member_id, form_error=message, form=form, status=422
        )
    outcome = "adjusted" if done.adjustment is None else "adjust_pending"
    return RedirectResponse(f"/admin/members/{member_id}?done={outcome}", status_code=303)


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
    check_csrf(user, csrf)
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
    check_csrf(user, csrf)
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
            exc.detail or problem_text(p, exc)
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
    try:
        memberapp.deliver_code(memberapp.CodeMessage(kind, destination, code, lang, text))
    except Exception as exc:  # a channel's failure must not lose the page
        structlog.get_logger("kopilka.console").warning(
            "console.delivery_failed", channel=kind, error=type(exc).__name__
        )
        return type(exc).__name__
    return None


def _app_name(session: Session) -> str:
    try:
        spec = current_program(session).spec
    except Problem:
        return "Kopilka"
    return spec.branding.app_name or spec.name


def _contact_target(
    request: Request, session: Session, user: Any, member_id: uuid.UUID, csrf: str, lang: str
) -> tuple[Page, str, Any]:
    """What both contact actions start with: the CSRF check, the page, the language of the
    message (the operator's unless chosen) and the member (404 if unknown)."""
    check_csrf(user, csrf)
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
            contact_error=problem_message(p, exc),
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
            contact_error=problem_message(p, exc),
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
