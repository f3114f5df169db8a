"""The member app's sign-in, device sessions and rotating card codes.

* **One-time codes**: a member asks for a code by phone or email; six random digits are
  sent through the configured messaging channel (``KOPILKA_MEMBER_CODE_CHANNEL``) and kept
  only as an HMAC. A code lives ``CODE_TTL``, is accepted once, and dies after
  ``CODE_ATTEMPTS`` wrong tries; asking is rate limited per address and per phone/email.
  The answer is the same whether or not a member has that phone or email.
* **App links**: staff issue a one-time link (``POST /api/v1/members/{id}/app-link``) that
  the till shows as a QR code; opening it signs the phone in. The token is kept hashed.
* **Devices**: each sign-in makes a device with a long-lived session (a random token in
  an HttpOnly cookie, kept as SHA-256) and its own card-code secret. Members see their
  devices and revoke them; a revoked device's codes stop resolving at once.
* **Card codes** (``kopilka.memberapp.cardcode``): ``resolve_card_code`` finds the member
  behind a code shown by a device, refusing codes outside one step of the clock and codes
  older than one already used at a till.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.core.config import get_settings
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error
from kopilka.memberapp import cardcode
from kopilka.memberapp.models import (
    AppLink,
    JoinCode,
    PushNotice,
    PushSubscription,
    SignInCode,
)
from kopilka.memberapp.models import (
    MemberDevice as MemberDevice,  # the type of a signed-in device (the app's pages)
)
from kopilka.members import queries as member_queries
from kopilka.members import service as members
from kopilka.members.schemas import MemberCreate, normalise_email
from kopilka.security import ratelimit

log = structlog.get_logger("kopilka.memberapp")

COOKIE = "kopilka_member"
CODE_TTL = dt.timedelta(minutes=10)
CODE_ATTEMPTS = 5
LINK_TTL = dt.timedelta(minutes=15)
# How often a device's last-seen time (and its sliding expiry) is written.
TOUCH_EVERY = dt.timedelta(hours=1)
CONSENT_TEXT_VERSION = "app-1"

# Asking for codes: per address, and per phone or email (so one inbox is not flooded);
# wrong codes and links per address.
SEND_PER_IP = ratelimit.define("app_code_send", 20, 3600)
SEND_PER_DESTINATION = ratelimit.define("app_code_destination", 5, 900)
SIGN_IN_FAILURE = ratelimit.define("app_sign_in_failure", 30, 900)


# ---------------------------------------------------------------------------- secrets


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _keyed(purpose: str, message: str) -> str:
    key = hashlib.sha256(f"kopilka.memberapp.{purpose}\x00{get_settings().secret_key}".encode())
    return hmac.new(key.digest(), message.encode(), hashlib.sha256).hexdigest()


def _code_hash(challenge: uuid.UUID, code: str) -> str:
    return _keyed("sign-in-code", f"{challenge}:{code}")


def csrf_token(device: MemberDevice) -> str:
    """The CSRF token of a device session (derived, so nothing more is stored)."""
    return _keyed("csrf", device.token_hash)[:40]


def check_csrf(device: MemberDevice, supplied: str | None) -> None:
    if not supplied or not hmac.compare_digest(csrf_token(device), supplied):
        raise Problem(403, "csrf_invalid", "send the session's X-CSRF-Token header")


# ---------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class CodeMessage:
    """A sign-in code on its way to a member."""

    kind: str  # "sms" (to a phone) or "email"
    destination: str
    code: str
    lang: str
    text: str


CodeChannel = Callable[[CodeMessage], None]
_channels_lock = threading.Lock()
_channels: dict[str, CodeChannel] = {}


def register_code_channel(name: str, channel: CodeChannel) -> None:
    """Add (or replace) a way to deliver sign-in codes, chosen by
    ``KOPILKA_MEMBER_CODE_CHANNEL`` (the communications part adds SMS and email)."""
    with _channels_lock:
        _channels[name] = channel


def _console_channel(message: CodeMessage) -> None:
    # Printed for a person watching the server (the demo): never on in production.
    print(
        f"[kopilka] sign-in code for {message.destination} ({message.kind}): {message.code}",
        file=sys.stderr,
        flush=True,
    )


def _file_channel(message: CodeMessage) -> None:
    path = get_settings().member_code_file
    line = f"{now().isoformat()}\t{message.kind}\t{message.destination}\t{message.code}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


register_code_channel("console", _console_channel)
register_code_channel("file", _file_channel)

CODE_TEXT = {
    "en": "{code} is your sign-in code for {app}. It expires in {minutes} minutes.",
    "ru": "{code} — код для входа в {app}. Действует {minutes} минут.",
}


def deliver_code(message: CodeMessage) -> None:
    name = get_settings().member_code_channel
    with _channels_lock:
        channel = _channels.get(name)
    if channel is None:
        raise RuntimeError(
            f"KOPILKA_MEMBER_CODE_CHANNEL={name!r} is not a known channel "
            f"({', '.join(sorted(_channels))})"
        )
    channel(message)


# ---------------------------------------------------------------------------- devices


_BROWSERS = (
    ("Edg/", "Edge"),
    ("YaBrowser/", "Yandex Browser"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str | None) -> str:
    """A short human name of the device from its User-Agent ("Chrome on Android")."""
    ua = user_agent or ""
    browser = next((name for mark, name in _BROWSERS if mark in ua), "Browser")
    system = next((name for mark, name in _SYSTEMS if mark in ua), None)
    return f"{browser} on {system}" if system else browser


def _new_card_no() -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(cardcode.DEVICE_DIGITS))


def new_device(
    session: Session, member_id: uuid.UUID, how: str, label: str
) -> tuple[MemberDevice, str]:
    """A new signed-in device of the member (not committed) and its session token."""
    at = now()
    lifetime = dt.timedelta(days=get_settings().member_session_days)
    for _attempt in range(5):
        token = secrets.token_urlsafe(32)
        device = MemberDevice(
            member_id=member_id,
            token_hash=_sha256(token),
            card_no=_new_card_no(),
            card_secret=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            last_code_step=0,
            label=label[:100],
            signed_in_by=how,
            created_at=at,
            last_seen_at=at,
            expires_at=at + lifetime,
        )
        try:
            with session.begin_nested():
                session.add(device)
                session.flush()
        except IntegrityError:  # pragma: no cover - a 1 in 10^10 collision of card_no
            continue
        return device, token
    raise RuntimeError("could not allocate a device number")  # pragma: no cover


def load_device(session: Session, token: str | None) -> MemberDevice | None:
    """The live device behind a session token (not revoked, not expired), or None.
    Touches its last-seen time (and slides its expiry) at most once per ``TOUCH_EVERY``;
    the caller commits."""
    if not token or len(token) > 200:
        return None
    at = now()
    device = session.execute(
        select(MemberDevice).where(MemberDevice.token_hash == _sha256(token))
    ).scalar_one_or_none()
    if device is None or device.revoked_at is not None or device.expires_at <= at:
        return None
    if at - device.last_seen_at >= TOUCH_EVERY:
        device.last_seen_at = at
        device.expires_at = at + dt.timedelta(days=get_settings().member_session_days)
        session.flush()
    return device


def card_params(device: MemberDevice) -> dict[str, Any]:
    """What the device needs to show its rotating code offline."""
    return {
        "device": device.card_no,
        "secret": device.card_secret,
        "step_seconds": cardcode.STEP_SECONDS,
        "digits": cardcode.DIGITS,
        "algorithm": "HMAC-SHA-256",
    }


def device_json(device: MemberDevice, current: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "id": str(device.id),
        "label": device.label,
        "signed_in_by": device.signed_in_by,
        "created_at": device.created_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat(),
        "current": device.id == current,
    }


def list_devices(session: Session, member_id: uuid.UUID) -> list[MemberDevice]:
    """The member's signed-in devices (not revoked, not expired), newest first."""
    return list(
        session.execute(
            select(MemberDevice)
            .where(
                MemberDevice.member_id == member_id,
                MemberDevice.revoked_at.is_(None),
                MemberDevice.expires_at > now(),
            )
            .order_by(MemberDevice.created_at.desc(), MemberDevice.id.desc())
        ).scalars()
    )


def revoke_device(
    session: Session, member_id: uuid.UUID, device_id: uuid.UUID, actor: str
) -> MemberDevice:
    """Sign a device out (not committed): its session ends, its card codes stop resolving
    and its push subscriptions are dropped. Revoking twice changes nothing; another
    member's device answers 404 as if it did not exist."""
    device = session.execute(
        select(MemberDevice).where(MemberDevice.id == device_id).with_for_update()
    ).scalar_one_or_none()
    if device is None or device.member_id != member_id:
        raise Problem(404, "device_not_found", f"no device {device_id}")
    if device.revoked_at is None:
        device.revoked_at = now()
        session.execute(delete(PushSubscription).where(PushSubscription.device_id == device.id))
        session.flush()
        record(
            session,
            actor,
            "member_app.sign_out",
            "member",
            str(member_id),
            details={"device_id": str(device.id), "label": device.label},
        )
    return device


# ---------------------------------------------------------------------------- codes


@dataclass(frozen=True)
class CodeRequest:
    challenge: uuid.UUID
    expires_at: dt.datetime
    kind: str
    destination: str  # normalised: E.164 phone or lower-case email


def mask(kind: str, destination: str) -> str:
    """A destination as shown back ("+7 *** *** 45 67", "o***@example.com")."""
    if kind == "email":
        local, _, domain = destination.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{destination[:2]} *** *** {destination[-4:-2]} {destination[-2:]}"


def request_code(
    session: Session,
    region: str,
    *,
    phone: str | None,
    email: str | None,
    lang: str,
    app_name: str,
) -> CodeRequest:
    """Send a one-time code to the member with this phone or email (committed).

    The answer looks the same whether or not such a member exists (no code is made for
    nobody). 422 for a malformed phone or email; 429 past the per-destination limit."""
    kind = "email" if email is not None else "sms"
    if email is not None:
        try:
            destination = normalise_email(email)
        except ValueError as exc:
            raise Problem(422, "validation_error", errors=[field_error("email", str(exc))]) from exc
    else:
        destination = members.normalise_phone(phone or "", region)
    # The per-destination count is its own short transaction (it must count even when
    # nobody has the phone); on SQLite no other write may be open meanwhile.
    session.rollback()
    ratelimit.enforce(SEND_PER_DESTINATION, f"{kind}:{_keyed('destination', destination)}")
    found, _ = members.find_members(
        session,
        region,
        phone=destination if kind == "sms" else None,
        email=destination if kind == "email" else None,
        limit=1,
    )
    at = now()
    challenge = uuid.uuid4()
    expires_at = at + CODE_TTL
    member = found[0] if found else None
    if member is None or member.status != "active":
        session.rollback()
        return CodeRequest(challenge, expires_at, kind, destination)
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        SignInCode(
            id=challenge,
            member_id=member.id,
            channel=kind,
            code_hash=_code_hash(challenge, code),
            attempts=0,
            created_at=at,
            expires_at=expires_at,
        )
    )
    session.commit()
    text = CODE_TEXT.get(lang, CODE_TEXT["en"]).format(
        code=code, app=app_name, minutes=int(CODE_TTL.total_seconds() // 60)
    )
    deliver_code(CodeMessage(kind, destination, code, lang, text))
    return CodeRequest(challenge, expires_at, kind, destination)


def verify_code(
    session: Session, challenge: uuid.UUID, code: str, label: str
) -> tuple[MemberDevice, str]:
    """Exchange a right code for a new device session (committed). A wrong code counts
    against the challenge (committed too): after ``CODE_ATTEMPTS`` it is dead."""
    at = now()
    row = session.execute(
        select(SignInCode).where(SignInCode.id == challenge).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        session.rollback()
        raise _wrong_code()
    if row.used_at is not None or row.expires_at <= at or row.attempts >= CODE_ATTEMPTS:
        session.rollback()
        raise _expired_code()
    clean = code.strip()
    if not hmac.compare_digest(row.code_hash, _code_hash(challenge, clean)):
        row.attempts += 1
        session.commit()
        raise _wrong_code(CODE_ATTEMPTS - row.attempts)
    row.used_at = at
    device, token = new_device(session, row.member_id, "code", label)
    record(
        session,
        f"member:{row.member_id}",
        "member_app.sign_in",
        "member",
        str(row.member_id),
        details={"device_id": str(device.id), "by": f"code ({row.channel})"},
    )
    session.commit()
    return device, token


def _expired_code() -> Problem:
    return Problem(
        422,
        "sign_in_code_expired",
        "this code is used, expired or was mistyped too often: ask for a new one",
        errors=[field_error("challenge", "ask for a new code", "expired")],
    )


def _wrong_code(left: int | None = None) -> Problem:
    return Problem(
        422,
        "sign_in_code_invalid",
        "the code is not right" + (f"; {left} tries left" if left is not None else ""),
        errors=[field_error("code", "not the code we sent", "invalid")],
        extra={"attempts_left": left} if left is not None else None,
    )


# ---------------------------------------------------------------------------- joining


# A browser's own id (a random string in a long-lived cookie): the enrolment's "app device",
# by which the referrals tell a member inviting themselves on their own phone.
DEVICE_COOKIE = "kopilka_device"
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def browser_id(raw: str | None) -> str | None:
    """The browser id of a ``kopilka_device`` cookie, None if it is not one."""
    return raw if raw and _DEVICE_ID.match(raw) else None


def new_browser_id() -> str:
    return secrets.token_urlsafe(16)


def _join_hash(challenge: uuid.UUID, phone: str, code: str) -> str:
    return _keyed("join-code", f"{challenge}:{phone}:{code}")


def _referrer(session: Session, referral_code: str) -> uuid.UUID:
    """The member a referral code is of, or a 422 naming ``referral_code``."""
    found = member_queries.with_referral_code(session, referral_code)
    if found is None:
        raise Problem(
            422,
            "validation_error",
            errors=[field_error("referral_code", "no member has this referral code", "unknown")],
        )
    return found


def request_join_code(
    session: Session,
    region: str,
    *,
    phone: str,
    referral_code: str,
    lang: str,
    app_name: str,
) -> CodeRequest:
    """Send a one-time code to a phone to enrol it from an invitation (committed).

    The answer looks the same whether or not the phone is a member's: a member's phone gets
    their sign-in code (``join`` then signs them in, without the referral), a new one a
    code to enrol with (kept as an HMAC of the challenge, the phone and the code). 422 for
    a malformed phone or an unknown referral code; 429 past the per-phone limit (shared
    with the sign-in's)."""
    destination = members.normalise_phone(phone, region)
    _referrer(session, referral_code)
    session.rollback()
    ratelimit.enforce(SEND_PER_DESTINATION, f"sms:{_keyed('destination', destination)}")
    found, _ = members.find_members(session, region, phone=destination, limit=1)
    member = found[0] if found else None
    if member is not None and member.status != "active":
        session.rollback()
        return CodeRequest(uuid.uuid4(), now() + CODE_TTL, "sms", destination)
    at = now()
    challenge = uuid.uuid4()
    code = f"{secrets.randbelow(10**6):06d}"
    if member is not None:
        session.add(
            SignInCode(
                id=challenge,
                member_id=member.id,
                channel="sms",
                code_hash=_code_hash(challenge, code),
                attempts=0,
                created_at=at,
                expires_at=at + CODE_TTL,
            )
        )
    else:
        session.add(
            JoinCode(
                id=challenge,
                code_hash=_join_hash(challenge, destination, code),
                attempts=0,
                created_at=at,
                expires_at=at + CODE_TTL,
            )
        )
    session.commit()
    text = CODE_TEXT.get(lang, CODE_TEXT["en"]).format(
        code=code, app=app_name, minutes=int(CODE_TTL.total_seconds() // 60)
    )
    deliver_code(CodeMessage("sms", destination, code, lang, text))
    return CodeRequest(challenge, at + CODE_TTL, "sms", destination)


@dataclass(frozen=True)
class Joined:
    device: MemberDevice
    token: str
    joined: bool  # False: the phone was a member's already, signed in (no referral)


def join(
    session: Session,
    region: str,
    card_prefix: str,
    *,
    challenge: uuid.UUID,
    code: str,
    phone: str,
    name: str | None,
    referral_code: str,
    browser: str | None,
    label: str,
) -> Joined:
    """Exchange a code of ``request_join_code`` for a new member enrolled with the referral
    code from the app (the referrals' hook runs in the same transaction), signed in on a
    new device (committed). A member's sign-in code signs them in instead. A wrong code
    counts against the challenge (committed): after ``CODE_ATTEMPTS`` it is dead."""
    if session.execute(select(SignInCode.id).where(SignInCode.id == challenge)).first():
        device, token = verify_code(session, challenge, code, label)
        return Joined(device, token, joined=False)
    at = now()
    row = session.execute(
        select(JoinCode).where(JoinCode.id == challenge).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        session.rollback()
        raise _wrong_code()
    if row.used_at is not None or row.expires_at <= at or row.attempts >= CODE_ATTEMPTS:
        session.rollback()
        raise _expired_code()
    destination = members.normalise_phone(phone, region)
    if not hmac.compare_digest(row.code_hash, _join_hash(challenge, destination, code.strip())):
        row.attempts += 1
        session.commit()
        raise _wrong_code(CODE_ATTEMPTS - row.attempts)
    row.used_at = at
    data = MemberCreate(
        phone=destination,
        name=(name or "").strip() or None,
        referral_code=referral_code,
    )
    via = members.Enrolment(channel="app", device=browser)
    try:
        with session.begin_nested():
            member = members.create_member(session, data, region, card_prefix, via)
    except Problem as exc:
        if exc.code != "member_exists":
            raise
        # enrolled meanwhile (at a till): the code proved the phone, so its member signs in
        found, _ = members.find_members(session, region, phone=destination, limit=1)
        if not found or found[0].status != "active":
            raise
        device, token = new_device(session, found[0].id, "code", label)
        _signed_in_audit(session, found[0].id, device, "code (join, a member already)")
        session.commit()
        return Joined(device, token, joined=False)
    device, token = new_device(session, member.id, "code", label)
    _signed_in_audit(session, member.id, device, "code (joined from an invitation)")
    session.commit()
    return Joined(device, token, joined=True)


def _signed_in_audit(
    session: Session, member_id: uuid.UUID, device: MemberDevice, how: str
) -> None:
    record(
        session,
        f"member:{member_id}",
        "member_app.sign_in",
        "member",
        str(member_id),
        details={"device_id": str(device.id), "by": how},
    )


# ---------------------------------------------------------------------------- links


def issue_app_link(
    session: Session, member_id: uuid.UUID, actor: str, base_url: str
) -> tuple[str, dt.datetime]:
    """A one-time sign-in link for the member (not committed): ``(url, expires_at)``.
    The token travels in the URL's fragment, so it reaches no server log or Referer."""
    member = members.get_member(session, member_id)
    if member.status != "active":
        raise Problem(
            409 if member.status == "erased" else 422,
            "member_erased" if member.status == "erased" else "member_blocked",
            f"member {member_id} is {member.status}",
        )
    token = secrets.token_urlsafe(32)
    at = now()
    link = AppLink(
        member_id=member_id,
        token_hash=_sha256(token),
        created_by=actor,
        created_at=at,
        expires_at=at + LINK_TTL,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor,
        "member_app.link",
        "member",
        str(member_id),
        details={"link_id": str(link.id), "expires_at": link.expires_at.isoformat()},
    )
    return f"{base_url.rstrip('/')}/app/link#{token}", link.expires_at


_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def use_app_link(session: Session, token: str, label: str) -> tuple[MemberDevice, str]:
    """Exchange a one-time link's token for a new device session (committed)."""
    at = now()
    link = None
    if _TOKEN.match(token):
        link = session.execute(
            select(AppLink).where(AppLink.token_hash == _sha256(token)).with_for_update()
        ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= at:
        session.rollback()
        raise Problem(
            422,
            "app_link_invalid",
            "this link is unknown, used or expired: ask at the till for a new one",
            errors=[field_error("token", "unknown, used or expired", "invalid")],
        )
    if members.get_member(session, link.member_id).status != "active":
        session.rollback()
        raise Problem(
            422,
            "app_link_invalid",
            "this link no longer signs anyone in",
            errors=[field_error("token", "the member cannot sign in", "invalid")],
        )
    link.used_at = at
    device, session_token = new_device(session, link.member_id, "link", label)
    record(
        session,
        f"member:{link.member_id}",
        "member_app.sign_in",
        "member",
        str(link.member_id),
        details={"device_id": str(device.id), "by": "link", "link_id": str(link.id)},
    )
    session.commit()
    return device, session_token


# ---------------------------------------------------------------------------- card codes


def resolve_card_code(session: Session, code: str, at: dt.datetime) -> uuid.UUID | None:
    """The member whose device shows ``code`` at ``at``, or None.

    The code must come from a live device, be of a time step within one step of ``at``,
    and not be older than a code of that device already used at a till: using a code
    records its step (in the caller's transaction), so a screenshot of an earlier code
    is refused from then on."""
    parts = cardcode.split(code)
    if parts is None:
        return None
    card_no, digits = parts
    device = session.execute(
        select(
            MemberDevice.id,
            MemberDevice.member_id,
            MemberDevice.card_secret,
            MemberDevice.last_code_step,
        ).where(
            MemberDevice.card_no == card_no,
            MemberDevice.revoked_at.is_(None),
            MemberDevice.expires_at > at,
        )
    ).one_or_none()
    if device is None:
        return None
    secret = base64.urlsafe_b64decode(device.card_secret)
    step = cardcode.matching_step(secret, digits, at, not_before=device.last_code_step)
    if step is None:
        return None
    moved = session.execute(
        update(MemberDevice)
        .where(MemberDevice.id == device.id, MemberDevice.last_code_step <= step)
        .values(last_code_step=step)
        .execution_options(synchronize_session=False)
    )
    if not getattr(moved, "rowcount", 0):  # a later code of the device was used meanwhile
        return None
    member_id: uuid.UUID = device.member_id
    return member_id


# ---------------------------------------------------------------------------- privacy


def export_devices(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """The member app's part of a member's data export."""
    devices = session.execute(
        select(MemberDevice)
        .where(MemberDevice.member_id == member_id)
        .order_by(MemberDevice.created_at)
    ).scalars()
    subscriptions = session.execute(
        select(PushSubscription.created_at, PushSubscription.device_id, PushSubscription.lang)
        .where(PushSubscription.member_id == member_id)
        .order_by(PushSubscription.created_at)
    ).all()
    return {
        "devices": [
            {
                **device_json(d),
                "expires_at": d.expires_at.isoformat(),
                "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
            }
            for d in devices
        ],
        "push_subscriptions": [
            {
                "created_at": s.created_at.isoformat(),
                "device_id": str(s.device_id) if s.device_id else None,
                "lang": s.lang,
            }
            for s in subscriptions
        ],
    }


def erase_devices(session: Session, member_id: uuid.UUID) -> None:
    """Remove everything the member app holds about a member (erasure)."""
    for model in (PushSubscription, PushNotice, SignInCode, AppLink, MemberDevice):
        session.execute(delete(model).where(model.member_id == member_id))
