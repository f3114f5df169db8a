"""Who is calling and what they may do: the FastAPI dependencies of ``/api/v1``.

One authorisation model for every caller, declared on the routes themselves.

Four kinds of caller reach Kopilka, each as a ``Principal`` with one role:

=========  ==================================================
kind       roles
=========  ==================================================
api_key    admin, manager, analyst, cashier (store), partner
user       admin, manager, analyst, support (console)
member     member (their own data only)
system     system (the worker, scheduled jobs)
=========  ==================================================

A route states who may call it with exactly one policy dependency: ``require(*roles)``
(authenticated, one of the roles) or ``public(reason)`` (deliberately open, e.g. asking for a
sign-in code). The policy is attached to the dependency function, so tests and the
permission matrix read the decision from the routes themselves (``policy_of``); a route
under ``/api/v1`` without one fails ``tests/security/test_route_policies.py``.

How a request's caller is found is given to this module by ``kopilka.wiring``
(``kopilka.security.identity`` asks the API keys and the registered authenticators), so that
``core`` imports no domain. The permission matrix that reads these policies off the routes
is ``kopilka.security.policy``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kopilka.core import context
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal


def get_session() -> Iterator[Session]:
    with get_db().session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# How the caller of a request is found (``kopilka.security.identity``), set by
# ``kopilka.wiring.wire``: the one answered from memory, or None, and the one that may
# read the database (run in the thread pool).
CachedCaller = Callable[[Request], Principal | None]
ResolveCaller = Callable[[Request], Principal]
_identity: list[tuple[CachedCaller, ResolveCaller]] = []


def use_identity(cached: CachedCaller, resolve: ResolveCaller) -> None:
    """Say how callers are found (once, from ``kopilka.wiring``; again replaces it)."""
    _identity[:] = [(cached, resolve)]


async def get_principal(request: Request) -> Principal:
    """The caller: an API key, or a session recognised by a registered authenticator
    (``kopilka.security.identity``); 401 otherwise. A key this process validated a moment
    ago is answered from memory on the event loop; anything that reads the database runs
    in the thread pool (every thread hop costs a busy till's request real CPU)."""
    known: Principal | None = request.scope.get(_PRINCIPAL_KEY)
    if known is not None:  # asked for again by another dependency of the request
        return known
    if not _identity:
        raise RuntimeError("no identity: kopilka.wiring.wire() was not called")
    cached, resolve = _identity[0]
    principal = cached(request)
    if principal is None:
        principal = await run_in_threadpool(resolve, request)
    request.scope[_PRINCIPAL_KEY] = principal
    return principal


_PRINCIPAL_KEY = "kopilka.principal"


PrincipalDep = Annotated[Principal, Depends(get_principal)]


ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    "api_key": ("admin", "manager", "analyst", "cashier", "partner"),
    "user": ("admin", "manager", "analyst", "support"),
    "member": ("member",),
    "system": ("system",),
}
ALL_ROLES: tuple[str, ...] = (
    "admin",
    "manager",
    "analyst",
    "support",
    "cashier",
    "partner",
    "member",
    "system",
)
# The path parameter a member principal must own on routes that let members in.
MEMBER_PARAM = "member_id"
POLICY_ATTR = "__kopilka_policy__"

SYSTEM = Principal(kind="system", id="worker", role="system", name="worker")


@dataclass(frozen=True)
class Policy:
    """Who may call a route: a set of roles, or nobody needs to be authenticated."""

    roles: frozenset[str]
    public: bool = False
    reason: str = ""

    def allows(self, role: str) -> bool:
        return self.public or role in self.roles

    def describe(self) -> str:
        if self.public:
            return f"public ({self.reason})" if self.reason else "public"
        return ", ".join(r for r in ALL_ROLES if r in self.roles)


def _forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", detail)


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency letting only callers with one of ``roles`` through (401 without
    credentials, 403 for another role). A member principal may only reach routes whose
    ``member_id`` path parameter is their own id (or routes without one, which must then
    act on the principal itself)."""
    unknown = sorted(set(roles) - set(ALL_ROLES))
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}; known: {', '.join(ALL_ROLES)}")
    policy = Policy(frozenset(roles))

    async def check(request: Request) -> Principal:
        # async and pure: FastAPI runs it on the event loop, not in a thread; the caller
        # is resolved here rather than as a dependency of its own (one level less of
        # FastAPI's dependency solving per request: 25 us of a till's 0.25 ms stack)
        principal = await get_principal(request)
        if not policy.allows(principal.role):
            raise _forbidden(f"role {principal.role!r} may not do this")
        if principal.kind == "member":
            own = request.path_params.get(MEMBER_PARAM)
            if own is not None and not _same_id(own, principal.id):
                raise _forbidden("a member may only reach their own data")
        facts = context.current()
        if facts is not None:
            facts.principal = principal
        return principal

    setattr(check, POLICY_ATTR, policy)
    check.__name__ = "require_" + "_".join(roles)
    return check


def public(reason: str) -> Callable[[], None]:
    """A dependency declaring a route deliberately open to anonymous callers.

    Use as ``dependencies=[Depends(public("why"))]``; put a rate limit on such routes."""
    if not reason.strip():
        raise ValueError("say why the route is public")

    def open_route() -> None:
        return None

    setattr(open_route, POLICY_ATTR, Policy(frozenset(), public=True, reason=reason))
    return open_route


def _same_id(raw: Any, principal_id: str) -> bool:
    try:
        return uuid.UUID(str(raw)) == uuid.UUID(principal_id)
    except ValueError:
        return str(raw) == principal_id
