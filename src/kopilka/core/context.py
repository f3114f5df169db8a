"""Per-request facts that code deep in a service may need (the caller and its address).

FastAPI runs sync dependencies and endpoints in worker threads, each with a *copy* of the
context, so a context variable set in a dependency would not be seen by the endpoint. The
middleware therefore puts one mutable ``RequestFacts`` object in the context for the
whole request, and everything below fills it in or reads it.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kopilka.core.principal import Principal


@dataclass
class RequestFacts:
    ip: str | None = None
    principal: Principal | None = None
    audited: list[str] = field(default_factory=list)  # audit actions recorded so far
    # Rate-limit hits to count once the response is out: (limit name, subject). Counting
    # inside a service would need a second write transaction beside the request's, which
    # SQLite (one writer at a time) cannot give.
    deferred_hits: list[tuple[str, str]] = field(default_factory=list)
    replayed: bool = False  # answered from an Idempotency-Key record: nothing changed


_facts: ContextVar[RequestFacts | None] = ContextVar("kopilka_request_facts", default=None)


def begin(ip: str | None) -> tuple[RequestFacts, Token[RequestFacts | None]]:
    facts = RequestFacts(ip=ip)
    return facts, _facts.set(facts)


def mark_replayed() -> None:
    """The request was answered from a stored Idempotency-Key response."""
    facts = _facts.get()
    if facts is not None:
        facts.replayed = True


def current() -> RequestFacts | None:
    """The facts of the request being served, or None outside a request (CLI, worker)."""
    return _facts.get()


def end(token: Token[RequestFacts | None]) -> None:
    _facts.reset(token)
