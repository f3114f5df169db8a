"""The permission matrix: the policies that ``kopilka.core.auth.require`` and ``public``
attach to the routes, read back off an application's routes (tests, ``kopilka security
matrix``, the middleware's per-route facts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from kopilka.core.auth import ALL_ROLES, POLICY_ATTR, Policy


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
    # FastAPI >= 0.13x keeps included routers lazily and yields their routes with this;
    # an older one flattens them itself
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    items: Iterable[Any] = (
        routes if iter_route_contexts is None else iter_route_contexts(list(routes))
    )
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
