"""FastAPI dependencies for authentication and role checks on ``/api/v1``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from kopilka.apikeys.service import Principal
from kopilka.core.db import get_db


def get_session() -> Iterator[Session]:
    with get_db().session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request) -> Principal:
    """The caller: an API key, or a session recognised by a registered authenticator
    (``kopilka.security.identity``); 401 otherwise."""
    from kopilka.security.identity import resolve_principal

    return resolve_principal(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets only the given roles through (403 otherwise); the route's
    policy, read by the permission matrix (see ``kopilka.security.policy.require``)."""
    from kopilka.security.policy import require as policy_require

    return policy_require(*roles)
