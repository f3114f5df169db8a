"""Turning a request into a ``Principal``: API keys, and sessions plugged in by other parts.

``Authorization: Bearer kop_…`` is an API key. Without that header, the authenticators
registered with ``register_authenticator`` are asked in turn (the member app's device
sessions, the console's sessions); the first that recognises the request wins. Nobody → 401.
A presented credential that is wrong counts against the caller's address; past the
``auth_failure`` limit the answer to a wrong one is 429 instead of 401 (a right key still
works: a flood of bad keys from a shop's shared address must not lock its tills out).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi import Request
from sqlalchemy.orm import Session

from kopilka.core import context
from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.security import ratelimit

Authenticator = Callable[[Request], Principal | None]
# How an API key is checked (``kopilka.apikeys.service``), given by ``kopilka.wiring``: from
# memory only, or None; and against the database (401 for a wrong key).
CachedKey = Callable[[str, int], Principal | None]
CheckKey = Callable[[Session, str, int], Principal]
_api_keys: list[tuple[CachedKey, CheckKey]] = []


def use_api_keys(cached: CachedKey, authenticate: CheckKey) -> None:
    """Say how API keys are checked (once, from ``kopilka.wiring``; again replaces it)."""
    _api_keys[:] = [(cached, authenticate)]


def _keys() -> tuple[CachedKey, CheckKey]:
    if not _api_keys:
        raise RuntimeError("no API keys: kopilka.wiring.wire() was not called")
    return _api_keys[0]


_lock = threading.Lock()
_authenticators: dict[str, Authenticator] = {}

AUTH_FAILURE = ratelimit.define("auth_failure", 60, 300)


def register_authenticator(name: str, authenticator: Authenticator) -> None:
    """Add (or replace) a way to recognise callers without an ``Authorization`` header.

    ``authenticator(request)`` returns a ``Principal`` (kind ``member`` or ``user``) or None;
    it opens its own database session if it needs one and must not raise for a request that
    simply is not its kind (raise ``Problem(401, "unauthorized")`` for a bad session)."""
    with _lock:
        _authenticators[name] = authenticator


def unregister_authenticator(name: str) -> None:
    with _lock:
        _authenticators.pop(name, None)


def client_ip(request: Request) -> str | None:
    """The caller's address (already taken from X-Forwarded-For by the server for trusted
    proxies: uvicorn's ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else None


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def cached_principal(request: Request) -> Principal | None:
    """The caller of ``request`` if its API key was validated by this process a moment
    ago (``KOPILKA_API_KEY_CACHE_SECONDS``), without any I/O; None when the database (or
    a session authenticator) must be asked: then call ``resolve_principal`` in a thread."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    cached, _ = _keys()
    principal = cached(token.strip(), get_settings().api_key_cache_seconds)
    if principal is not None:
        _remember(request, principal)
    return principal


def _remember(request: Request, principal: Principal) -> None:
    request.state.principal = principal
    facts = context.current()
    if facts is not None:
        facts.principal = principal


def resolve_principal(request: Request) -> Principal:
    """The caller of ``request`` or a 401 (429 after too many bad credentials)."""
    header = request.headers.get("authorization")
    ip = client_ip(request)
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _count_failure(ip)
            raise _unauthorized("send Authorization: Bearer <API key>")
        _, authenticate = _keys()
        try:
            with get_db().session() as session:
                principal = authenticate(
                    session, token.strip(), get_settings().api_key_cache_seconds
                )
        except Problem as exc:
            if exc.status == 401:
                _count_failure(ip)
            raise
    else:
        principal = _from_authenticators(request)
    _remember(request, principal)
    return principal


def _from_authenticators(request: Request) -> Principal:
    with _lock:
        chain = list(_authenticators.values())
    for authenticator in chain:
        principal = authenticator(request)
        if principal is not None:
            return principal
    raise _unauthorized("send Authorization: Bearer <API key>, or sign in")


def _count_failure(ip: str | None) -> None:
    if ip is not None:
        ratelimit.enforce(AUTH_FAILURE, ip)
