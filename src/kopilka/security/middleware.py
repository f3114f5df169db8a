"""Web hardening and request bookkeeping, as one ASGI middleware around the application.

For every HTTP request it
- opens the request's ``RequestFacts`` (caller address; the principal is added when the
  route's policy resolves it) for rate limits and the audit log;
- adds the security headers a browser needs (CSP with ``frame-ancestors``,
  ``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``, COOP, HSTS when the
  request came over TLS — directly or per ``X-Forwarded-Proto``, ``Cache-Control: no-store``
  on the API), leaving alone any a route set itself;
- after a state-changing request that succeeded, was not an Idempotency-Key replay and
  that no domain audit record covered, writes one ``http.<method>`` audit row (actor,
  route, status), so every console and API action is in the audit log, including those of
  routes added later. High-volume business traffic that has its own trail (receipts,
  enrolment at the till, custom events) is left out by ``KOPILKA_AUDIT_SKIP``.

Around it, ``BodyLimitMiddleware`` refuses a request body larger than
``KOPILKA_MAX_BODY_BYTES`` (or a route's own larger limit, ``body_limit``) with 413
``payload_too_large`` at once, without reading it: the declared ``Content-Length`` is
checked before a byte is read, a chunked body is counted as it arrives.

CORS is closed unless ``KOPILKA_CORS_ORIGINS`` lists origins (``install`` adds Starlette's
CORS middleware for exactly those).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kopilka.audit.service import record
from kopilka.core import context
from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.core.errors import Problem, problem_response, validation_problem
from kopilka.security.policy import RouteInfo, dependency_calls, route_infos
from kopilka.security.ratelimit import count_deferred

log = structlog.get_logger("kopilka.security")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def docs_csp(script_hashes: Sequence[str]) -> str:
    """The CSP of the API docs page (``kopilka.web.docs``): Swagger UI from Kopilka itself,
    plus the page's own inline scripts by their SHA-256 (base64)."""
    scripts = " ".join(f"'sha256-{h}'" for h in script_hashes)
    return CSP.replace("script-src 'self'", f"script-src 'self' {scripts}".rstrip(), 1)


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_PREFIXES = ("/api/v1/", "/admin")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", ())}


def came_over_tls(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    proto = _headers(scope).get(b"x-forwarded-proto", b"").decode("latin-1")
    return proto.split(",")[0].strip().lower() == "https"


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers added to a response to the request ``scope``."""
    path = scope.get("path", "")
    settings = get_settings()
    out = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if came_over_tls(scope) and settings.hsts_seconds > 0:
        out.append((b"strict-transport-security", f"max-age={settings.hsts_seconds}".encode()))
    if path.startswith("/api/"):
        out.append((b"cache-control", b"no-store"))
    return out


# A NUL character is never meaningful in Kopilka's text and PostgreSQL cannot store it:
# refuse it at the door (JSON escapes it as \u0000 behind an odd number of backslashes).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def _without_nul(scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
    """Where a NUL character hides in the request (``path``, ``query``, ``body``), if
    anywhere; and a ``receive`` that replays a body read for the check."""
    if b"%00" in scope.get("raw_path", b"") or "\x00" in scope.get("path", ""):
        return receive, "path"
    if b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b""):
        return receive, "query"
    if scope.get("method") not in WRITES:
        return receive, None
    ctype = _headers(scope).get(b"content-type", b"")
    if b"json" not in ctype:
        return receive, None
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    if b"\x00" in body or _JSON_NUL.search(body):
        return replayed, "body"
    return replayed, None


async def _refuse_nul(
    scope: Scope, receive: Receive, send: Send, where: str, extra: list[tuple[bytes, bytes]]
) -> None:
    problem = validation_problem(
        [{"field": where, "in": where, "code": "nul_character", "message": "no NUL characters"}]
    )
    response = problem_response(Request(scope, receive), problem)
    for key, value in extra:
        if key.decode() not in response.headers:
            response.headers[key.decode()] = value.decode()
    await response(scope, receive, send)


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def skipped(method: str, template: str) -> bool:
    """Is this request left out of the HTTP audit (``KOPILKA_AUDIT_SKIP``: entries
    ``/prefix`` for every method, or ``METHOD /route/{param}`` for one route)?"""
    for entry in (e.strip() for e in get_settings().audit_skip.split(",")):
        if not entry:
            continue
        verb, _, route = entry.rpartition(" ")
        if verb:
            if verb.upper() == method and route == template:
                return True
        elif template == route or template.startswith(route.rstrip("/") + "/"):
            return True
    return False


class SecurityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts, token = context.begin(_client_ip(scope))
        extra = security_headers(scope)
        status = 500
        receive, where = await _without_nul(scope, receive)
        if where is not None:
            context.end(token)
            await _refuse_nul(scope, receive, send, where, extra)
            return

        async def send_hardened(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_hardened)
        finally:
            context.end(token)
        if facts.deferred_hits:
            await run_in_threadpool(_count_deferred, facts)
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        if (
            method in WRITES
            and status < 400
            and facts.principal is not None
            and not facts.audited
            and not facts.replayed
            and path.startswith(AUDITED_PREFIXES)
        ):
            template = route_template(scope)
            if not skipped(method, template):
                await run_in_threadpool(
                    _record_request, facts, method, path, template, status, scope
                )


def route_template(scope: Scope) -> str:
    """The path with its parameters named again (``/api/v1/members/{member_id}``)."""
    template = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        template = template.replace(f"/{value}", "/{" + str(name) + "}", 1)
    return template


def _count_deferred(facts: context.RequestFacts) -> None:
    try:
        count_deferred(facts.deferred_hits)
    except Exception:  # the answer is sent already
        log.exception("rate_limit_count_failed")


def _record_request(
    facts: context.RequestFacts,
    method: str,
    path: str,
    template: str,
    status: int,
    scope: Scope,
) -> None:
    principal = facts.principal
    if principal is None:  # pragma: no cover - checked by the caller
        return
    params: dict[str, Any] = dict(scope.get("path_params") or {})
    target_id = next((str(v) for k, v in params.items() if k.endswith("id")), None)
    try:
        with get_db().session() as session:
            record(
                session,
                principal.actor,
                f"http.{method.lower()}",
                template.removeprefix("/api/v1/").split("/")[0] or "http",
                target_id,
                details={"method": method, "route": template, "path": path, "status": status},
            )
            session.commit()
    except Exception:  # the answer is sent already; losing this row must not fail it
        log.exception("audit_write_failed", method=method, route=template)


BODY_LIMIT_ATTR = "__kopilka_max_body_bytes__"


def body_limit(max_bytes: int) -> Callable[[], None]:
    """A dependency declaring that a route takes bodies of up to ``max_bytes`` (an upload
    larger than ``KOPILKA_MAX_BODY_BYTES`` allows). Use as
    ``dependencies=[Depends(body_limit(n))]``; ``BodyLimitMiddleware`` reads it from the
    route, so the limit is stated where the route is."""

    def takes_large_body() -> None:
        return None

    setattr(takes_large_body, BODY_LIMIT_ATTR, max_bytes)
    return takes_large_body


def _declared_limit(route: RouteInfo) -> int | None:
    for call in dependency_calls(route.dependant):
        limit = getattr(call, BODY_LIMIT_ATTR, None)
        if isinstance(limit, int):
            return limit
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413 ``payload_too_large``, at once and
    without buffering: a declared ``Content-Length`` over the limit is answered before a
    byte of the body is read; a body without one (chunked) is counted as it streams in and
    answered as soon as it passes the limit. The application then sees the client gone
    (``http.disconnect``) and whatever it answers is dropped: the 413 is the answer.

    The limit is ``KOPILKA_MAX_BODY_BYTES``, or a route's larger ``body_limit``; routes are
    only matched for a body that passes the default, so ordinary requests pay a byte count
    and no route matching."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.default = get_settings().max_body_bytes
        self.larger = [
            (compile_path(route.path)[0], route.methods, limit)
            for route in route_infos(routes, prefix="")
            if (limit := _declared_limit(route)) is not None and limit > self.default
        ]

    def limit_for(self, scope: Scope) -> int:
        """The most this request's route takes (the default unless it declares more)."""
        path, method = scope.get("path", ""), scope.get("method", "")
        for regex, methods, limit in self.larger:
            if method in methods and regex.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.default
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            limit = self.limit_for(scope)
            if declared > limit:
                await _refuse_large(scope, send, limit)
                return
        received = 0
        routed = limit != self.default
        started = refused = cut = False

        async def limited_receive() -> Message:
            nonlocal received, limit, routed, refused, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received > limit and not routed:
                limit, routed = self.limit_for(scope), True
            if received <= limit:
                return message
            cut = True
            if not started:
                refused = True
                await _refuse_large(scope, send, limit)
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 is sent: the application's own answer is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ClientDisconnect:
            if not refused:
                raise


async def _refuse_large(scope: Scope, send: Send, limit: int) -> None:
    problem = Problem(
        413,
        "payload_too_large",
        f"the request body may be at most {limit} bytes",
        errors=[
            {
                "field": "body",
                "in": "body",
                "code": "too_large",
                "message": f"at most {limit} bytes",
            }
        ],
        extra={"max_body_bytes": limit},
        # the rest of the body is not read, so the connection cannot carry another request
        headers={"Connection": "close"},
    )
    response = problem_response(Request(scope), problem)
    for key, value in security_headers(scope):
        if key.decode() not in response.headers:
            response.headers[key.decode()] = value.decode()

    async def nothing() -> Message:  # pragma: no cover - a JSON response reads nothing
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


def install(app: FastAPI) -> None:
    """Add the security middleware (and CORS for the configured origins) to ``app``, inside
    the body limit.

    Call it before the request-id middleware is added, so that one stays outermost."""
    origins = [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(SecurityMiddleware)
    # outside the security middleware, whose NUL check reads a JSON body before the route
    app.add_middleware(BodyLimitMiddleware, routes=app.router.routes)
