"""Console sessions as callers of ``/api/v1``: the console's pages (and its users' own
scripts in the browser) reach the API with the session cookie instead of an API key.

Safe methods need only the cookie; anything that changes state also needs the session's
CSRF token in the ``X-CSRF-Token`` header, so another site cannot make a signed-in
browser post to the API.
"""

from __future__ import annotations

from fastapi import Request

from kopilka.console import service
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NAME = "console"


def authenticate(request: Request) -> Principal | None:
    """The console user behind the request's session cookie, or None without one."""
    token = request.cookies.get(service.COOKIE)
    if not token:
        return None
    with get_db().session() as session:
        current = service.load(session, token)
    if current is None:
        raise Problem(401, "unauthorized", "the console session has ended; sign in again")
    if request.method not in SAFE_METHODS:
        service.check_csrf(current, request.headers.get("x-csrf-token"))
    return current.principal
