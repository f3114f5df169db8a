"""Managing API keys: list, revoke, rotate with a grace period, expiry, last use, audit."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from kopilka.apikeys import service as apikeys_service
from kopilka.apikeys.models import ApiKey
from kopilka.apikeys.service import clear_cache
from kopilka.cli import app as cli
from kopilka.core.db import Database, now
from tests.conftest import KeyFactory


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_list_and_read_never_show_the_secret(
    client: TestClient, admin: dict[str, str]
) -> None:
    # when an admin issues a cashier key with an expiry
    expires = (now() + dt.timedelta(days=30)).isoformat()
    r = client.post(
        "/api/v1/apikeys",
        json={"name": "till 7", "role": "cashier", "store": "msk-01", "expires_at": expires},
        headers=admin,
    )
    # then the key is shown once, prefixed, with its role, scope and expiry
    assert r.status_code == 201, r.text
    issued = r.json()
    key = issued["key"]
    assert key.startswith("kop_") and issued["hint"] == key[:17] + "…"
    assert (issued["role"], issued["store"], issued["status"]) == ("cashier", "msk-01", "active")
    assert issued["expires_at"] is not None and issued["last_used_at"] is None
    # and listing or reading it never shows the secret, but shows the last use
    assert client.get("/api/v1/members", headers=_bearer(key)).status_code in (200, 503)
    listed = client.get("/api/v1/apikeys", headers=admin).json()["items"]
    mine = next(k for k in listed if k["id"] == issued["id"])
    assert "key" not in mine and key not in str(listed)
    assert mine["last_used_at"] is not None
    one = client.get(f"/api/v1/apikeys/{issued['id']}", headers=admin).json()
    assert one == mine


def test_bad_key_requests_name_the_field(client: TestClient, admin: dict[str, str]) -> None:
    cases = [
        ({"name": "t", "role": "cashier"}, "store"),
        ({"name": "t", "role": "partner"}, "partner"),
        ({"name": "t", "role": "root"}, "role"),
        ({"name": "t", "role": "admin", "store": "msk-01"}, "store"),
        ({"name": "t", "role": "admin", "expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/apikeys", json=body, headers=admin)
        assert r.status_code == 422, body
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert client.get("/api/v1/apikeys", headers=admin).json()["items"] != []


def test_only_admins_manage_keys(client: TestClient, auth: KeyFactory) -> None:
    for role in ("manager", "analyst", "cashier", "partner"):
        h = auth(role)
        assert client.get("/api/v1/apikeys", headers=h).status_code == 403
        r = client.post("/api/v1/apikeys", json={"name": "x", "role": "admin"}, headers=h)
        assert r.status_code == 403


def test_revoke_stops_a_key_at_once(client: TestClient, admin: dict[str, str]) -> None:
    issued = client.post(
        "/api/v1/apikeys", json={"name": "shop", "role": "analyst"}, headers=admin
    ).json()
    h = _bearer(issued["key"])
    assert client.get("/api/v1/apikeys/x", headers=h).status_code == 403  # known and cached
    r = client.post(f"/api/v1/apikeys/{issued['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    again = client.get("/api/v1/program", headers=h)
    assert again.status_code == 401 and again.json()["detail"] == "the API key is revoked"
    twice = client.post(f"/api/v1/apikeys/{issued['id']}/revoke", headers=admin)
    assert twice.json()["revoked_at"] == r.json()["revoked_at"]


def test_rotation_keeps_the_old_key_for_the_grace_period(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    # given a partner key in use
    old = client.post(
        "/api/v1/apikeys",
        json={"name": "acme", "role": "partner", "partner": "acme"},
        headers=admin,
    ).json()
    # when it is rotated with an hour of grace
    r = client.post(
        f"/api/v1/apikeys/{old['id']}/rotate", json={"grace_seconds": 3600}, headers=admin
    )
    # then a successor with the same role and scope is issued, and both keys work
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["role"], new["partner"], new["name"]) == ("partner", "acme", "acme")
    assert new["key"] != old["key"]
    for key in (old["key"], new["key"]):
        assert client.get("/api/v1/purchases", headers=_bearer(key)).status_code == 200
    state = client.get(f"/api/v1/apikeys/{old['id']}", headers=admin).json()
    assert state["status"] == "rotating" and state["replaced_by"] == new["id"]
    ends = dt.datetime.fromisoformat(state["expires_at"])
    assert dt.timedelta(minutes=59) < ends - now() <= dt.timedelta(hours=1)
    # and rotating the old one again is refused
    again = client.post(f"/api/v1/apikeys/{old['id']}/rotate", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "api_key_rotated"
    # when the grace period is over, the old key stops and the new one goes on
    with db.session() as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(old["id"]))
            .values(expires_at=now() - dt.timedelta(seconds=1))
        )
        s.commit()
    clear_cache()
    gone = client.get("/api/v1/purchases", headers=_bearer(old["key"]))
    assert gone.status_code == 401 and gone.json()["detail"] == "the API key has expired"
    assert client.get("/api/v1/purchases", headers=_bearer(new["key"])).status_code == 200


def test_a_cached_key_stops_when_it_expires(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a key that expires in an hour, validated (and so cached) just now
    ends = now() + dt.timedelta(hours=1)
    issued = client.post(
        "/api/v1/apikeys",
        json={"name": "a", "role": "admin", "expires_at": ends.isoformat()},
        headers=admin,
    ).json()
    h = _bearer(issued["key"])
    assert client.get("/api/v1/apikeys", headers=h).status_code == 200
    # when the clock passes its expiry while it is still in the cache
    # (regression: a slow CI machine made the old one-second real-time version flaky)
    later = ends + dt.timedelta(seconds=1)
    monkeypatch.setattr(apikeys_service, "now", lambda: later)
    r = client.get("/api/v1/apikeys", headers=h)
    # then it is refused at once, as expired
    assert r.status_code == 401
    assert r.json()["detail"] == "the API key has expired"


def test_key_changes_are_audited_without_secrets(client: TestClient, admin: dict[str, str]) -> None:
    issued = client.post(
        "/api/v1/apikeys", json={"name": "k", "role": "manager"}, headers=admin
    ).json()
    client.post(f"/api/v1/apikeys/{issued['id']}/rotate", headers=admin)
    client.post(f"/api/v1/apikeys/{issued['id']}/revoke", headers=admin)
    audit = client.get("/api/v1/audit?action=apikey.*", headers=admin).json()["items"]
    assert [a["action"] for a in audit] == ["apikey.revoke", "apikey.rotate", "apikey.create"]
    assert all(a["target_id"] == issued["id"] for a in audit)
    assert audit[0]["before"]["status"] == "rotating" and audit[0]["after"]["status"] == "revoked"
    assert issued["key"] not in str(audit) and issued["key"][17:] not in str(audit)


def test_command_line_lists_revokes_and_rotates(db: Database) -> None:
    runner = CliRunner()
    created = runner.invoke(cli, ["apikey", "create", "--name", "pos", "--role", "admin"])
    assert created.exit_code == 0, created.output
    key = created.output.splitlines()[-1]
    key_id = created.output.split()[2]
    listed = runner.invoke(cli, ["apikey", "list"])
    assert listed.exit_code == 0 and key_id in listed.output and "active" in listed.output
    assert key not in listed.output
    rotated = runner.invoke(cli, ["apikey", "rotate", key_id, "--grace", "60"])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.splitlines()[-1]
    assert new_key.startswith("kop_") and new_key != key
    assert "rotating" in runner.invoke(cli, ["apikey", "list"]).output
    revoked = runner.invoke(cli, ["apikey", "revoke", key_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert key_id not in runner.invoke(cli, ["apikey", "list"]).output
    assert key_id in runner.invoke(cli, ["apikey", "list", "--all"]).output
    unknown = runner.invoke(cli, ["apikey", "revoke", "00000000-0000-0000-0000-000000000000"])
    assert unknown.exit_code == 2 and "api_key_not_found" in unknown.output
