"""FastAPI dependencies for authentication and role checks on ``/api/v1``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kopilka.apikeys.service import Principal
from kopilka.core.db import get_db


def get_session() -> Iterator[Session]:
    with get_db().session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_principal(request: Request) -> Principal:
    """The caller: an API key, or a session recognised by a registered authenticator
    (``kopilka.security.identity``); 401 otherwise. A key this process validated a moment
    ago is answered from memory on the event loop; anything that reads the database runs
    in the thread pool (every thread hop costs a busy till's request real CPU)."""
    from kopilka.security.identity import cached_principal, resolve_principal

    known: Principal | None = request.scope.get(_PRINCIPAL_KEY)
    if known is not None:  # asked for again by another dependency of the request
        return known
    principal = cached_principal(request)
    if principal is None:
        principal = await run_in_threadpool(resolve_principal, request)
    request.scope[_PRINCIPAL_KEY] = principal
    return principal


_PRINCIPAL_KEY = "kopilka.principal"


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only the given roles through (403 otherwise); the route's
    policy, read by the permission matrix (see ``kopilka.security.policy.require``)."""
    from kopilka.security.policy import require as policy_require

    return policy_require(*roles)
