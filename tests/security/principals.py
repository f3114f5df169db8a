"""Callers that have no real sign-in yet (console users, members, the system) for tests.

The console's and the member app's sessions plug into ``register_authenticator``; until
they land, tests register this one, which reads ``X-Test-Principal: kind:role:id``. Only
the session store is stood in for: the policy checks run as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from kopilka.core.principal import Principal
from kopilka.security.identity import register_authenticator, unregister_authenticator

HEADER = "X-Test-Principal"
NAME = "tests"


def _authenticate(request: Request) -> Principal | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    kind, role, ident = raw.split(":", 2)
    return Principal(kind=kind, id=ident, role=role, name=f"test {role}")


@contextmanager
def principal_sessions() -> Iterator[None]:
    register_authenticator(NAME, _authenticate)
    try:
        yield
    finally:
        unregister_authenticator(NAME)


def as_member(member_id: str) -> dict[str, str]:
    return {HEADER: f"member:member:{member_id}"}


def as_user(role: str) -> dict[str, str]:
    return {HEADER: f"user:{role}:{uuid.uuid4()}"}


def as_system() -> dict[str, str]:
    return {HEADER: "system:system:worker"}
