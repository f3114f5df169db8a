"""A request whose route asks for the caller twice (its role check and a per-key rate
limit) resolves the caller once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.auth import use_identity
from kopilka.core.db import Database
from kopilka.security import identity


def test_the_caller_is_resolved_once_per_request(
    program: Database,
    client: TestClient,
    admin: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    # given a member
    m = client.post("/api/v1/members", json={"phone": "+79165551234"}, headers=admin).json()
    looked_up: list[Any] = []
    real = identity.cached_principal

    def counting(request: Any) -> Any:
        looked_up.append(request.url.path)
        return real(request)

    # (the identity core.auth asks is the one kopilka.wiring gave it)
    use_identity(counting, identity.resolve_principal)
    request.addfinalizer(lambda: use_identity(real, identity.resolve_principal))
    # when the member's export (role check + a rate limit per key) is asked for
    r = client.get(f"/api/v1/members/{m['id']}/export", headers=admin)
    # then it answers, and the key was looked up once
    assert r.status_code == 200
    assert looked_up == [f"/api/v1/members/{m['id']}/export"]
