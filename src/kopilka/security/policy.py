"""One authorisation model for every caller, declared on the routes themselves.

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
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from kopilka.apikeys.service import Principal
from kopilka.core.auth import get_principal
from kopilka.core.errors import Problem
from kopilka.security import context

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


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency function of a route (its own, its router's, and theirs), depth first."""
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from dependency_calls(dep)


@dataclass(frozen=True)
class RouteInfo:
    """An API route as served: its full path, methods and resolved dependencies."""

    path: str
    methods: frozenset[str]
    dependant: Dependant
    name: str = ""


def route_infos(routes: Iterable[Any], prefix: str = "/api/v1") -> list[RouteInfo]:
    """The API routes under ``prefix`` of an application (``app.routes``), flattened
    through included routers, in declaration order."""
    try:  # FastAPI >= 0.13x keeps included routers lazily; this yields their routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI flattens routers itself
        items: Iterable[Any] = routes
    else:
        items = iter_route_contexts(list(routes))
    out = []
    for r in items:
        dependant = getattr(r, "dependant", None)
        path = getattr(r, "path", None)
        if not isinstance(dependant, Dependant) or not isinstance(path, str):
            continue
        if path.startswith(prefix):
            methods = frozenset(getattr(r, "methods", None) or ())
            out.append(RouteInfo(path, methods, dependant, str(getattr(r, "name", "") or "")))
    return out


def policies_of(route: RouteInfo | APIRoute) -> list[Policy]:
    """Every policy declared on a route (by the route, its router or a sub-dependency)."""
    found = []
    for call in dependency_calls(route.dependant):
        policy = getattr(call, POLICY_ATTR, None)
        if isinstance(policy, Policy):
            found.append(policy)
    return found


def effective_policy(policies: Iterable[Policy]) -> Policy | None:
    """The policy a caller meets when several apply: every one of them must let it in."""
    items = list(policies)
    if not items:
        return None
    closed = [p for p in items if not p.public]
    if not closed:
        return items[0]
    roles = frozenset(ALL_ROLES)
    for p in closed:
        roles &= p.roles
    return Policy(roles)


def policy_of(route: RouteInfo | APIRoute) -> Policy | None:
    return effective_policy(policies_of(route))


def matrix(routes: Iterable[Any]) -> list[tuple[str, str, Policy | None]]:
    """``(method, path, policy)`` for every API route, sorted by path then method."""
    out = []
    for route in route_infos(routes):
        policy = policy_of(route)
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, route.path, policy))
    return sorted(out, key=lambda t: (t[1], t[0]))


def matrix_markdown(routes: Iterable[Any]) -> str:
    """The permission matrix as a Markdown table (``kopilka security matrix``)."""
    roles = [r for r in ALL_ROLES if r != "system"]
    head = "| method | route | " + " | ".join(roles) + " |"
    sep = "|---|---|" + "|".join(":-:" for _ in roles) + "|"
    lines = [head, sep]
    for method, path, policy in matrix(routes):
        if policy is None:
            cells = ["**no policy**"] * len(roles)
        elif policy.public:
            cells = ["public"] * len(roles)
        else:
            cells = ["✓" if r in policy.roles else "" for r in roles]
        lines.append(f"| {method} | `{path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
