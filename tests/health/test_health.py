"""Health, OpenAPI, request ids and framework errors as problem+json."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from kopilka.core.db import Database


def test_live_and_ready(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    r = client.get("/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "schema": "ok"}}


def test_ready_is_503_when_schema_is_behind(client: TestClient, db: Database) -> None:
    # given the schema revision marker moved back
    with db.engine.begin() as conn:
        revs = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('behind')"))
    try:
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert "kopilka migrate" in r.json()["checks"]["schema"]
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
            for rev in revs:
                conn.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": rev}
                )


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "Kopilka"
    assert "/api/v1/members" in spec["paths"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    r = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = client.get("/health/live").headers["x-request-id"]
    assert len(made) >= 16


def test_framework_404_and_405_are_problems(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "rid-1"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"
    assert r.json()["request_id"] == "rid-1"
    r = client.delete("/health/live")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"


def test_unexpected_error_is_500_without_trace(client: TestClient) -> None:
    from fastapi import FastAPI

    app: FastAPI = client.app  # type: ignore[assignment]

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals SELECT * FROM members")

    r = client.get("/boom")
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert "SELECT" not in r.text and "Traceback" not in r.text
