"""Who is calling: the shared kernel type every layer may name (an API key, a console
user, a member or the system). ``kopilka.apikeys`` makes one from a key, the console and
the member app from their sessions (``kopilka.security.identity`` asks them in turn)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key, a console user, a member or the system, with one role
    (and, for cashier and partner keys, a scope)."""

    kind: str  # "api_key" | "user" | "member" | "system"
    id: str
    role: str
    store: str | None = None
    partner: str | None = None
    name: str = ""

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"
