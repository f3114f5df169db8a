"""HTTP endpoints of the member app under ``/api/v1/app`` (sign-in, the member's own data,
devices, consents, push) and the staff's ``POST /api/v1/members/{id}/app-link``.

Members call these with their device session cookie (``kopilka_member``); every call
that changes state also carries the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from kopilka.challenges import service as challenges
from kopilka.core.auth import SessionDep, public, require
from kopilka.core.config import get_settings
from kopilka.core.db import get_db, now
from kopilka.core.errors import Problem
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.ledger.service import balances
from kopilka.memberapp import push, service
from kopilka.memberapp.lang import LANG_COOKIE, LANGS, pick_lang
from kopilka.memberapp.models import MemberDevice
from kopilka.memberapp.schemas import (
    AppLinkOut,
    CardOut,
    CodeIn,
    CodeOut,
    ConsentsIn,
    ConsentsOut,
    DeviceList,
    DeviceOut,
    JoinCodeIn,
    JoinedOut,
    JoinIn,
    LinkIn,
    MeOut,
    PublicKeyOut,
    SignedIn,
    SignedOut,
    SubscribedOut,
    SubscriptionIn,
    UnsubscribedOut,
    UnsubscribeIn,
    VerifyIn,
)
from kopilka.members import service as members
from kopilka.program.service import current_program
from kopilka.security import ratelimit
from kopilka.security.crypto import decrypt, encrypt
from kopilka.security.identity import client_ip
from kopilka.security.middleware import came_over_tls
from kopilka.security.ratelimit import rate_limit
from kopilka.tiers.service import progress as tier_progress

router = APIRouter(tags=["member app"])

MemberDep = Annotated[Principal, Depends(require("member"))]
Staff = Annotated[Principal, Depends(require("admin", "manager", "support", "cashier"))]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTHENTICATOR = "member_app"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookies at 400 days; the server decides


def _lang(request: Request, given: str | None = None) -> str:
    if given in LANGS:
        return given
    return pick_lang(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


# ---------------------------------------------------------------------------- sessions


def authenticate(request: Request) -> Principal | None:
    """The member behind the request's device session cookie, or None without one."""
    token = request.cookies.get(service.COOKIE)
    if not token:
        return None
    with get_db().session() as session:
        device = service.load_device(session, token)
        session.commit()
    if device is None:
        if request.url.path.startswith("/api/v1/app/"):
            raise Problem(401, "unauthorized", "the app session has ended; sign in again")
        return None
    if request.method not in SAFE_METHODS:
        service.check_csrf(device, request.headers.get("x-csrf-token"))
    request.state.member_device = device
    return Principal(kind="member", id=str(device.member_id), role="member", name=device.label)


def current_device(request: Request) -> MemberDevice | None:
    device = getattr(request.state, "member_device", None)
    return device if isinstance(device, MemberDevice) else None


def _need_device(request: Request) -> MemberDevice:
    device = current_device(request)
    if device is None:
        raise Problem(
            409, "app_session_required", "only a device signed in to the app has a card code"
        )
    return device


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        service.COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        secure=came_over_tls(request.scope),
        samesite="lax",
    )


def _signed_in(
    request: Request,
    session: Any,
    device: MemberDevice,
    token: str,
    joined: bool | None = None,
) -> JSONResponse:
    old = request.cookies.get(service.COOKIE)
    if old:  # the device this browser was signed in as before is signed out
        previous = service.load_device(session, old)
        if previous is not None and previous.id != device.id:
            service.revoke_device(
                session, previous.member_id, previous.id, f"member:{previous.member_id}"
            )
        session.commit()
    body = SignedIn(
        member_id=device.member_id,
        device=service.device_json(device, device.id),
        card=service.card_params(device),
        csrf_token=service.csrf_token(device),
    )
    if joined is not None:
        body = JoinedOut(**body.model_dump(), joined=joined)
    response = JSONResponse(body.model_dump(mode="json"))
    set_session_cookie(response, request, token)
    return response


def set_browser_cookie(response: Response, request: Request, browser: str) -> None:
    """The browser's own id (``kopilka_device``), kept as long as browsers keep cookies."""
    response.set_cookie(
        service.DEVICE_COOKIE,
        browser,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        secure=came_over_tls(request.scope),
        samesite="lax",
    )


def _ip_subjects(request: Request) -> list[str]:
    ip = client_ip(request)
    return [f"ip:{ip}"] if ip else []


@router.post(
    "/app/sign-in/code",
    status_code=202,
    response_model=CodeOut,
    dependencies=[
        Depends(public("members ask for a sign-in code before they have a session")),
        Depends(rate_limit(service.SEND_PER_IP, per=("ip",))),
    ],
)
def ask_for_code(body: CodeIn, request: Request, session: SessionDep) -> CodeOut:
    """Send a one-time sign-in code to the member with this phone or email. The answer is
    the same whether or not such a member exists."""
    spec = current_program(session).spec
    lang = _lang(request, body.lang)
    sent = service.request_code(
        session,
        spec.default_phone_region,
        phone=body.phone,
        email=body.email,
        lang=lang,
        app_name=spec.branding.app_name or spec.name,
    )
    return CodeOut(
        challenge=sent.challenge,
        expires_at=sent.expires_at,
        channel="email" if sent.kind == "email" else "sms",
        sent_to=service.mask(sent.kind, sent.destination),
    )


@router.post(
    "/app/sign-in/verify",
    response_model=SignedIn,
    dependencies=[Depends(public("members exchange a sign-in code for a session"))],
)
def verify_code(body: VerifyIn, request: Request, session: SessionDep) -> JSONResponse:
    """Exchange the code for a device session (the cookie is set)."""
    subjects = _ip_subjects(request)
    ratelimit.enforce_blocked(service.SIGN_IN_FAILURE, subjects)
    label = service.device_label(request.headers.get("user-agent"))
    try:
        device, token = service.verify_code(session, body.challenge, body.code, label)
    except Problem as exc:
        if exc.code == "sign_in_code_invalid":
            ratelimit.count_later(service.SIGN_IN_FAILURE, subjects)
        raise
    return _signed_in(request, session, device, token)


@router.post(
    "/app/sign-in/link",
    response_model=SignedIn,
    dependencies=[Depends(public("members open a one-time app link from the till"))],
)
def use_link(body: LinkIn, request: Request, session: SessionDep) -> JSONResponse:
    """Exchange a one-time app link's token for a device session (the cookie is set)."""
    subjects = _ip_subjects(request)
    ratelimit.enforce_blocked(service.SIGN_IN_FAILURE, subjects)
    label = service.device_label(request.headers.get("user-agent"))
    try:
        device, token = service.use_app_link(session, body.token, label)
    except Problem:
        ratelimit.count_later(service.SIGN_IN_FAILURE, subjects)
        raise
    return _signed_in(request, session, device, token)


@router.post(
    "/app/join/code",
    status_code=202,
    response_model=CodeOut,
    dependencies=[
        Depends(public("a friend invited to the programme asks for a code to join")),
        Depends(rate_limit(service.SEND_PER_IP, per=("ip",))),
    ],
)
def ask_to_join(body: JoinCodeIn, request: Request, session: SessionDep) -> CodeOut:
    """Send a one-time code to a phone to join from an invitation (``/app/r/{code}``). The
    answer is the same whether or not the phone is a member's (a member's gets a sign-in
    code). 422 naming ``referral_code`` for an unknown one."""
    spec = current_program(session).spec
    sent = service.request_join_code(
        session,
        spec.default_phone_region,
        phone=body.phone,
        referral_code=body.referral_code,
        lang=_lang(request, body.lang),
        app_name=spec.branding.app_name or spec.name,
    )
    return CodeOut(
        challenge=sent.challenge,
        expires_at=sent.expires_at,
        channel="sms",
        sent_to=service.mask(sent.kind, sent.destination),
    )


@router.post(
    "/app/join/verify",
    response_model=JoinedOut,
    dependencies=[Depends(public("a friend exchanges a code for a new card and a session"))],
)
def join(body: JoinIn, request: Request, session: SessionDep) -> JSONResponse:
    """Join with the code: a new member enrolled from the app with the referral code (the
    browser's ``kopilka_device`` cookie is the enrolment's device), signed in (the cookie is
    set), ``joined: true``; a member's phone signs them in instead, ``joined: false``."""
    subjects = _ip_subjects(request)
    ratelimit.enforce_blocked(service.SIGN_IN_FAILURE, subjects)
    browser = service.browser_id(request.cookies.get(service.DEVICE_COOKIE))
    fresh = browser is None
    browser = browser or service.new_browser_id()
    try:
        done = service.join(
            session,
            current_program(session).spec.default_phone_region,
            get_settings().card_prefix,
            challenge=body.challenge,
            code=body.code,
            phone=body.phone,
            name=body.name,
            referral_code=body.referral_code,
            browser=browser,
            label=service.device_label(request.headers.get("user-agent")),
        )
    except Problem as exc:
        if exc.code == "sign_in_code_invalid":
            ratelimit.count_later(service.SIGN_IN_FAILURE, subjects)
        raise
    response = _signed_in(request, session, done.device, done.token, joined=done.joined)
    if fresh:
        set_browser_cookie(response, request, browser)
    return response


@router.post("/app/sign-out", response_model=SignedOut)
def sign_out(request: Request, session: SessionDep, principal: MemberDep) -> JSONResponse:
    """End this device's session (its card code stops working; the cookie is cleared)."""
    device = current_device(request)
    if device is not None:
        service.revoke_device(session, device.member_id, device.id, principal.actor)
        session.commit()
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(service.COOKIE, path="/")
    return response


@router.get("/app/sessions", response_model=DeviceList)
def list_sessions(request: Request, session: SessionDep, principal: MemberDep) -> DeviceList:
    """The member's signed-in devices, newest first (``current``: this one)."""
    device = current_device(request)
    current = device.id if device else None
    items = [
        service.device_json(d, current)
        for d in service.list_devices(session, uuid.UUID(principal.id))
    ]
    return DeviceList.model_validate({"items": items})


# Answered as built (times as the service writes them), under the model it declares.
@router.post("/app/sessions/{session_id}/revoke", response_model=DeviceOut)
def revoke_session(
    session_id: uuid.UUID, request: Request, session: SessionDep, principal: MemberDep
) -> JSONResponse:
    """Sign one of the member's devices out (revoking twice changes nothing)."""
    device = service.revoke_device(session, uuid.UUID(principal.id), session_id, principal.actor)
    session.commit()
    current = current_device(request)
    return JSONResponse(service.device_json(device, current.id if current else None))


# ---------------------------------------------------------------------------- the member


@router.get("/app/me", response_model=MeOut)
def me(session: SessionDep, principal: MemberDep) -> dict[str, Any]:
    """The member's profile, balances (main currency first), consents and the progress
    to the next tier (``tier_progress``, null without tiers)."""
    member_id = uuid.UUID(principal.id)
    member = members.get_member(session, member_id)
    spec = current_program(session).spec
    names = {c.code: c.name for c in spec.currencies}
    order = {c.code: i for i, c in enumerate(spec.currencies)}
    rows = sorted(balances(session, member_id), key=lambda b: order.get(b.currency, 99))
    return {
        "member": {
            "id": str(member.id),
            "card_number": member.card_number,
            "name": member.name,
            "phone": member.phone,
            "email": member.email,
            "tier": member.tier,
            "status": member.status,
            "referral_code": member.referral_code,
        },
        "balances": [{**b.as_json(), "name": names.get(b.currency, b.currency)} for b in rows],
        "main_currency": spec.currencies[0].code,
        "consents": members.current_consents(session, member_id),
        "tier_progress": tier_progress(session, member_id),
        "as_of": now().isoformat(),
    }


@router.get("/app/card", response_model=CardOut)
def card(request: Request, session: SessionDep, _: MemberDep) -> CardOut:
    """This device's card-code parameters, the static card number and the server's clock
    (the app corrects the phone's clock by it)."""
    device = _need_device(request)
    member = members.get_member(session, device.member_id)
    return CardOut.model_validate(
        {
            "card_number": member.card_number,
            "card": service.card_params(device),
            "server_time": now(),
        }
    )


@router.post("/app/consents", response_model=ConsentsOut)
def record_consents(
    body: ConsentsIn,
    session: SessionDep,
    principal: MemberDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Give or withdraw consent per channel from the app (recorded with source ``app``)."""
    member_id = uuid.UUID(principal.id)

    def action() -> tuple[int, Any]:
        members.record_consents(
            session,
            member_id,
            body.model_dump(),
            "app",
            service.CONSENT_TEXT_VERSION,
            actor=principal.actor,
        )
        return 200, {"current": members.current_consents(session, member_id)}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        "POST /app/consents",
        body.model_dump(mode="json"),
        action,
    )
    return JSONResponse(payload, status_code=status)


# ---------------------------------------------------------------------------- push


@router.get("/app/push/key", response_model=PublicKeyOut)
def push_key(session: SessionDep, _: MemberDep) -> PublicKeyOut:
    """The application server key to subscribe with (made on first use)."""
    key = push.public_key(session)
    session.commit()
    return PublicKeyOut(public_key=key)


@router.post("/app/push/subscriptions", status_code=201, response_model=SubscribedOut)
def subscribe(
    body: SubscriptionIn, request: Request, session: SessionDep, principal: MemberDep
) -> dict[str, Any]:
    """Keep this browser's push subscription (the same endpoint again replaces it)."""
    device = current_device(request)
    found = push.subscribe(
        session,
        uuid.UUID(principal.id),
        device.id if device else None,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        _lang(request, body.lang),
    )
    session.commit()
    return {"id": str(found.id), "created_at": found.created_at.isoformat()}


@router.post("/app/push/unsubscribe", response_model=UnsubscribedOut)
def unsubscribe(body: UnsubscribeIn, session: SessionDep, principal: MemberDep) -> dict[str, Any]:
    """Forget this browser's push subscription (forgetting twice changes nothing)."""
    removed = push.unsubscribe(session, uuid.UUID(principal.id), body.endpoint)
    session.commit()
    return {"removed": removed}


# ---------------------------------------------------------------------------- staff


@router.post("/members/{member_id}/app-link", status_code=201, response_model=AppLinkOut)
def app_link(
    member_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Staff,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """A one-time sign-in link into the member app (the till shows it as a QR code so the
    customer installs the app already signed in). It works once, for 15 minutes."""
    base = get_settings().public_url or str(request.base_url)
    sealed_as = "member_app_links.url"

    def action() -> tuple[int, Any]:
        url, expires_at = service.issue_app_link(session, member_id, principal.actor, base)
        # The replayable answer keeps the link encrypted (the idempotency record is
        # stored as JSON): a database reader gets no working sign-in link out of it.
        return 201, {"url": encrypt(url, sealed_as), "expires_at": expires_at.isoformat()}

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /members/{member_id}/app-link",
        {},
        action,
    )
    if status == 201:
        payload = {**payload, "url": decrypt(payload["url"], sealed_as)}
    return JSONResponse(payload, status_code=status)


# --- challenges ---


@router.post("/app/challenges/{code}/join")
def join_challenge(
    code: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
    session: SessionDep,
    principal: MemberDep,
) -> dict[str, Any]:
    """The signed-in member opts in to a challenge (``join: opt_in``); again: the same.
    404 ``challenge_not_found``; 422 ``not_in_audience``."""
    item = challenges.join(session, uuid.UUID(principal.id), code, channel="app")
    session.commit()
    return item
