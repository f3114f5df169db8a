"""Web Push (RFC 8030) with VAPID (RFC 8292) and message encryption (RFC 8291).

The application server's P-256 key pair is made on first use and kept in the database
(the private key encrypted at rest). A browser subscribes from the app's profile; its
subscription (push-service endpoint and the keys the message is encrypted to) is kept
encrypted too. ``send_push`` encrypts a small JSON message (``aes128gcm``) to each of the
member's subscriptions and posts it to the push service with a VAPID-signed JWT; a
subscription the push service says is gone (404/410) is dropped.

Endpoints are only accepted on the known push services' hosts (``KOPILKA_PUSH_HOSTS``),
so a subscription cannot make the server post to an arbitrary address; outside
production, loopback addresses are accepted too (tests and local push stand-ins).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.core.config import get_settings
from kopilka.core.db import now
from kopilka.core.errors import field_error, validation_problem
from kopilka.memberapp.lang import LANGS
from kopilka.memberapp.models import PushSubscription, VapidKey
from kopilka.security.crypto import blind_index

log = structlog.get_logger("kopilka.memberapp.push")

TTL_SECONDS = 24 * 3600  # a phone that is off gets the message when it is back within a day
TIMEOUT_SECONDS = 10
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_key_of(vapid: Any) -> str:
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(raw)


def vapid_keys(session: Session) -> tuple[str, str]:
    """``(private key PEM, public key base64url)``, made and stored on first use (the
    caller commits). Two processes racing to make them agree on the first one stored."""
    row = session.get(VapidKey, 1)
    if row is None:
        vapid = Vapid()
        vapid.generate_keys()
        pem = vapid.private_pem().decode()
        try:
            with session.begin_nested():
                session.add(VapidKey(id=1, private_pem=pem, public_key=_public_key_of(vapid)))
                session.flush()
            log.info("vapid_keys_created")
        except IntegrityError:
            pass
        row = session.get(VapidKey, 1, populate_existing=True)
        assert row is not None
    return row.private_pem, row.public_key


def public_key(session: Session) -> str:
    """The application server key a browser subscribes with (base64url)."""
    return vapid_keys(session)[1]


# ---------------------------------------------------------------------------- subscriptions


def _allowed_hosts() -> list[str]:
    return [h.strip().lower() for h in get_settings().push_hosts.split(",") if h.strip()]


def check_endpoint(endpoint: str) -> None:
    """422 naming ``endpoint`` unless it is a push service's URL."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    ok = parts.scheme == "https" and any(
        host == h or host.endswith("." + h) for h in _allowed_hosts()
    )
    if (
        not ok
        and host in LOOPBACK
        and parts.scheme in ("http", "https")
        and get_settings().environment != "production"
    ):
        ok = True
    if not ok:
        raise validation_problem(
            [field_error("endpoint", "not the URL of a known push service", "not_allowed")]
        )


def _check_key(field: str, value: str, length: int, first: int | None = None) -> None:
    try:
        raw = _unb64url(value)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length or (first is not None and raw[0] != first):
        raise validation_problem(
            [field_error(field, f"must be {length} bytes, base64url", "invalid")]
        )


def subscribe(
    session: Session,
    member_id: uuid.UUID,
    device_id: uuid.UUID | None,
    endpoint: str,
    p256dh: str,
    auth: str,
    lang: str,
) -> PushSubscription:
    """Keep a browser's push subscription for the member (not committed). The same
    endpoint again replaces the earlier one (a browser that re-subscribed, or a phone
    now signed in as someone else)."""
    check_endpoint(endpoint)
    _check_key("keys.p256dh", p256dh, 65, 0x04)
    _check_key("keys.auth", auth, 16)
    index = blind_index("push_endpoint", endpoint)
    found = session.execute(
        select(PushSubscription).where(PushSubscription.endpoint_index == index)
    ).scalar_one_or_none()
    if found is None:
        found = PushSubscription(endpoint=endpoint, endpoint_index=index, failures=0)
        session.add(found)
    found.member_id = member_id
    found.device_id = device_id
    found.p256dh = p256dh
    found.auth = auth
    found.lang = lang if lang in LANGS else "en"
    found.created_at = now()
    found.failures = 0
    session.flush()
    return found


def unsubscribe(session: Session, member_id: uuid.UUID, endpoint: str) -> int:
    """Forget a subscription of the member (not committed); how many were dropped."""
    result = session.execute(
        delete(PushSubscription).where(
            PushSubscription.endpoint_index == blind_index("push_endpoint", endpoint),
            PushSubscription.member_id == member_id,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def subscription_count(session: Session, member_id: uuid.UUID) -> int:
    return len(
        session.execute(
            select(PushSubscription.id).where(PushSubscription.member_id == member_id)
        ).all()
    )


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Target:
    id: uuid.UUID
    endpoint: str
    p256dh: str
    auth: str
    lang: str


@dataclass(frozen=True)
class Outcome:
    target: uuid.UUID
    status: str  # "sent" | "gone" | "failed"


def targets(session: Session, member_id: uuid.UUID) -> list[Target]:
    """The member's subscriptions, decrypted, ready to send to."""
    rows = session.execute(
        select(PushSubscription)
        .where(PushSubscription.member_id == member_id)
        .order_by(PushSubscription.created_at)
    ).scalars()
    return [Target(r.id, r.endpoint, r.p256dh, r.auth, r.lang) for r in rows]


Message = dict[str, str]


def deliver(
    keys: tuple[str, str],
    to: list[Target],
    message: Callable[[str], Message],
    http: requests.Session | None = None,
) -> list[Outcome]:
    """Encrypt ``message(lang)`` to each target and post it to its push service (no
    database work here: the caller holds no transaction while the network answers)."""
    vapid = Vapid.from_pem(keys[0].encode())
    out = []
    for target in to:
        payload = json.dumps(message(target.lang), ensure_ascii=False, separators=(",", ":"))
        try:
            webpush(
                subscription_info={
                    "endpoint": target.endpoint,
                    "keys": {"p256dh": target.p256dh, "auth": target.auth},
                },
                data=payload,
                vapid_private_key=vapid,
                vapid_claims={"sub": get_settings().vapid_subject},
                content_encoding="aes128gcm",
                ttl=TTL_SECONDS,
                timeout=TIMEOUT_SECONDS,
                requests_session=http,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            gone = status in (404, 410)
            log.info("push_refused", subscription=str(target.id), status=status, gone=gone)
            out.append(Outcome(target.id, "gone" if gone else "failed"))
            continue
        except requests.RequestException as exc:
            log.info("push_unreachable", subscription=str(target.id), error=type(exc).__name__)
            out.append(Outcome(target.id, "failed"))
            continue
        out.append(Outcome(target.id, "sent"))
    return out


def record_outcomes(session: Session, outcomes: list[Outcome]) -> int:
    """Write what the push services answered (not committed); how many were sent."""
    at = now()
    sent = 0
    for o in outcomes:
        if o.status == "gone":
            session.execute(delete(PushSubscription).where(PushSubscription.id == o.target))
        elif o.status == "failed":
            session.execute(
                update(PushSubscription)
                .where(PushSubscription.id == o.target)
                .values(failures=PushSubscription.failures + 1)
            )
        else:
            sent += 1
            session.execute(
                update(PushSubscription)
                .where(PushSubscription.id == o.target)
                .values(last_sent_at=at, failures=0)
            )
    return sent


def send_push(session: Session, member_id: uuid.UUID, title: str, body: str, url: str) -> int:
    """Push a notification to every device of the member that subscribed; how many push
    services took it. Subscriptions that are gone are dropped (not committed).

    The network calls happen while ``session`` stays as it is: call it outside a write
    transaction you care about (the worker's push job reads, commits, then sends)."""
    keys = vapid_keys(session)
    to = targets(session, member_id)
    if not to:
        return 0
    message = {"title": title, "body": body, "url": url}
    outcomes = deliver(keys, to, lambda _lang: message)
    return record_outcomes(session, outcomes)
