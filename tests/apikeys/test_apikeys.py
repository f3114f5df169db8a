"""API keys: only a hash is stored; revoked and expired keys are refused."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kopilka.apikeys.models import ApiKey
from kopilka.apikeys.service import clear_cache, create_key, revoke_key
from kopilka.core.db import Database, now


def test_only_hash_is_stored(db: Database) -> None:
    with db.session() as s:
        _, key = create_key(s, "till 1", "cashier", "msk-01")
        s.commit()
        stored = s.scalars(select(ApiKey)).one()
    assert key.startswith("kop_")
    assert key not in (stored.secret_hash, stored.lookup)
    assert key.split("_", 2)[2] not in stored.secret_hash
    assert stored.store_code == "msk-01" and stored.role == "cashier"


def test_revoked_and_expired_keys_are_refused(client: TestClient, db: Database) -> None:
    with db.session() as s:
        row, key = create_key(s, "k", "admin")
        row2, key2 = create_key(s, "k2", "admin")
        s.commit()
    h = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/members", headers=h).status_code != 401
    with db.session() as s:
        revoke_key(s, row.id)
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == row2.id)
            .values(expires_at=now() - dt.timedelta(seconds=1))
        )
        s.commit()
    clear_cache()
    r = client.get("/api/v1/members", headers=h)
    assert r.status_code == 401 and r.json()["detail"] == "the API key is revoked"
    r = client.get("/api/v1/members", headers={"Authorization": f"Bearer {key2}"})
    assert r.status_code == 401 and r.json()["detail"] == "the API key has expired"


def test_cashier_key_needs_store(db: Database) -> None:
    import pytest

    from kopilka.core.errors import Problem

    with db.session() as s, pytest.raises(Problem) as info:
        create_key(s, "till", "cashier")
    assert info.value.status == 422
