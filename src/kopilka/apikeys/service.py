"""Creating, checking, listing, revoking and rotating API keys.

A key reads ``kop_<lookup>_<secret>``: the prefix makes a leaked key recognisable (secret
scanners), the lookup part finds the row, and only SHA-256 of the whole key is stored. The
secret has 256 bits of entropy, so a fast hash is enough (no password stretching needed),
and the comparison is constant-time.

Rotation without downtime: ``rotate_key`` issues a new key with the same role and scope
and lets the old one live on for a grace period (its ``expires_at`` is brought forward),
so the integrations can be switched over one by one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kopilka.apikeys.models import ROLES, ApiKey
from kopilka.audit.service import record
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.principal import Principal
from kopilka.security import ratelimit

PREFIX = "kop_"
DEFAULT_GRACE_SECONDS = 24 * 3600
MAX_GRACE_SECONDS = 30 * 24 * 3600


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_new(
    name: str, role: str, store: str | None, partner: str | None, expires_at: dt.datetime | None
) -> None:
    errors = []
    if not name.strip() or len(name) > 200:
        errors.append(field_error("name", "1 to 200 characters"))
    if role not in ROLES:
        errors.append(field_error("role", f"must be one of {', '.join(ROLES)}"))
    if role == "cashier" and not store:
        errors.append(field_error("store", "a cashier key needs a store", "required"))
    if role == "partner" and not partner:
        errors.append(field_error("partner", "a partner key needs a partner", "required"))
    if store is not None and role != "cashier":
        errors.append(field_error("store", "only cashier keys have a store", "not_allowed"))
    if partner is not None and role != "partner":
        errors.append(field_error("partner", "only partner keys have a partner", "not_allowed"))
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now()):
        errors.append(field_error("expires_at", "must be a future time with an offset", "range"))
    if errors:
        raise validation_problem(errors)


def _new_secret() -> tuple[str, str]:
    lookup = secrets.token_hex(6)
    return lookup, f"{PREFIX}{lookup}_{secrets.token_urlsafe(32)}"


def create_key(
    session: Session,
    name: str,
    role: str,
    store: str | None = None,
    partner: str | None = None,
    *,
    expires_at: dt.datetime | None = None,
    created_by: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key (not committed); returns the row and the key in clear (shown once).
    422 naming the field for a bad name, role, scope or expiry. Audited when
    ``created_by`` names who asks for it."""
    _check_new(name, role, store, partner, expires_at)
    lookup, key = _new_secret()
    row = ApiKey(
        lookup=lookup,
        secret_hash=_hash(key),
        name=name.strip(),
        role=role,
        store_code=store,
        partner_code=partner,
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    if created_by is not None:  # the API and the command line; fixtures and seeds pass none
        _audit(session, created_by, "apikey.create", row, before=None, after=key_json(row))
    return row, key


_cache_lock = threading.Lock()
# digest -> (monotonic time cached, principal, expires_at)
_cache: dict[str, tuple[float, Principal, dt.datetime | None]] = {}


def clear_cache() -> None:
    """Forget validated keys (revocation bites at once in this process)."""
    with _cache_lock:
        _cache.clear()
    ratelimit.clear_cache()


def cached(key: str, cache_seconds: int) -> Principal | None:
    """The principal of a key validated by this process less than ``cache_seconds`` ago
    and not expired since, or None (then ``authenticate`` must ask the database). Reads
    nothing but memory, so the event loop may call it."""
    hit = _cache_hit(_hash(key), cache_seconds)
    return None if hit is None else hit


def _cache_hit(digest: str, cache_seconds: int) -> Principal | None:
    t = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and t - hit[0] < cache_seconds:
        expires = hit[2]
        if expires is None or expires > now():
            return hit[1]
    return None


def _valid_row(session: Session, key: str, digest: str, moment: dt.datetime) -> ApiKey:
    """The row of a key given in clear, or 401: malformed, unknown, revoked or expired."""
    parts = key.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != PREFIX:
        raise _unauthorized("malformed API key")
    row = session.execute(select(ApiKey).where(ApiKey.lookup == parts[1])).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise _unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise _unauthorized("the API key is revoked")
    if row.expires_at is not None and row.expires_at <= moment:
        raise _unauthorized("the API key has expired")
    return row


def valid_key(session: Session, key: str) -> ApiKey | None:
    """The row of a key given in clear if it authenticates now, else None. Reads only (no
    ``last_used_at``, no cache): for checking a key kept elsewhere, e.g. by the demo."""
    try:
        return _valid_row(session, key, _hash(key), now())
    except Problem:
        return None


def authenticate(session: Session, key: str, cache_seconds: int) -> Principal:
    """The principal of a key, or 401. Valid keys are cached for ``cache_seconds``
    (a revocation made by another process takes at most that long to bite)."""
    digest = _hash(key)
    t = time.monotonic()
    hit = _cache_hit(digest, cache_seconds)
    if hit is not None:
        return hit
    moment = now()
    row = _valid_row(session, key, digest, moment)
    principal = Principal(
        kind="api_key",
        id=str(row.id),
        role=row.role,
        store=row.store_code,
        partner=row.partner_code,
        name=row.name,
    )
    session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=moment))
    session.commit()
    with _cache_lock:
        _cache[digest] = (t, principal, row.expires_at)
    return principal


def get_key(session: Session, key_id: uuid.UUID, *, lock: bool = False) -> ApiKey:
    q = select(ApiKey).where(ApiKey.id == key_id)
    if lock:
        q = q.with_for_update()
    row = session.execute(q).scalar_one_or_none()
    if row is None:
        raise Problem(404, "api_key_not_found", f"no API key {key_id}")
    return row


def list_keys(
    session: Session,
    *,
    include_inactive: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ApiKey], str | None]:
    """Keys in creation order, a page at a time (never with their secrets)."""
    q = select(ApiKey).order_by(ApiKey.id).limit(limit + 1)
    if not include_inactive:
        q = q.where(ApiKey.revoked_at.is_(None))
        q = q.where((ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now()))
    if cursor:
        q = q.where(ApiKey.id > _decode_cursor(cursor))
    rows = list(session.scalars(q))
    nxt = _encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], nxt


def revoke_key(session: Session, key_id: uuid.UUID, actor: str | None = None) -> ApiKey:
    """Revoke a key (not committed); revoking it again changes nothing. 404 if unknown."""
    row = get_key(session, key_id, lock=True)
    if row.revoked_at is None:
        before = key_json(row)
        row.revoked_at = now()
        session.flush()
        _audit(session, actor, "apikey.revoke", row, before=before, after=key_json(row))
    clear_cache()
    return row


def rotate_key(
    session: Session,
    key_id: uuid.UUID,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    actor: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a successor with the same name, role and scope; the old key stays valid for
    ``grace_seconds`` (0: it stops at once). 409 ``api_key_inactive`` for a revoked or
    expired key, 409 ``api_key_rotated`` if it was rotated already."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise validation_problem(
            [field_error("grace_seconds", f"0 to {MAX_GRACE_SECONDS} seconds", "range")]
        )
    old = get_key(session, key_id, lock=True)
    moment = now()
    if old.status(moment) in ("revoked", "expired"):
        raise Problem(409, "api_key_inactive", f"API key {key_id} is {old.status(moment)}")
    if old.replaced_by is not None:
        raise Problem(
            409,
            "api_key_rotated",
            f"API key {key_id} was already rotated; rotate its successor {old.replaced_by}",
        )
    before = key_json(old)
    lookup, key = _new_secret()
    new = ApiKey(
        lookup=lookup,
        secret_hash=_hash(key),
        name=old.name,
        role=old.role,
        store_code=old.store_code,
        partner_code=old.partner_code,
        expires_at=old.expires_at,
        created_by=actor,
    )
    session.add(new)
    session.flush()
    ends = moment + dt.timedelta(seconds=grace_seconds)
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    old.replaced_by = new.id
    session.flush()
    _audit(
        session,
        actor,
        "apikey.rotate",
        old,
        before=before,
        after=key_json(old),
        details={"successor": str(new.id), "grace_seconds": grace_seconds},
    )
    clear_cache()
    return new, key


def key_json(row: ApiKey, at: dt.datetime | None = None) -> dict[str, Any]:
    """What may be shown about a key: never its secret, only its public lookup part."""
    return {
        "id": str(row.id),
        "name": row.name,
        "role": row.role,
        "store": row.store_code,
        "partner": row.partner_code,
        "hint": f"{PREFIX}{row.lookup}_…",
        "status": row.status(at or now()),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "last_used_at": _iso(row.last_used_at),
        "replaced_by": str(row.replaced_by) if row.replaced_by else None,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _audit(
    session: Session,
    actor: str | None,
    action: str,
    row: ApiKey,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    details: dict[str, Any] | None = None,
) -> None:
    record(
        session,
        actor or "system:cli",
        action,
        "api_key",
        str(row.id),
        before=before,
        after=after,
        details=details,
    )


def _encode_cursor(key_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(key_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise validation_problem(
            [{**field_error("cursor", "not a cursor from this API"), "in": "query"}]
        ) from exc


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
