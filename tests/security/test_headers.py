"""Web hardening: security headers, HSTS behind TLS, CORS closed unless configured."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database
from kopilka.main import create_app
from kopilka.security.middleware import CSP


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/health/live", "/api/v1/members", "/api/v1/nowhere"):
        r = client.get(path)
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "default-src 'self'" in h["content-security-policy"]
        assert "unsafe-inline" not in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        assert h["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in h  # plain HTTP
    assert client.get("/api/v1/members").headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/health/live").headers


def test_hsts_when_the_request_came_over_tls(client: TestClient) -> None:
    r = client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    direct = TestClient(client.app, base_url="https://kopilka.example")
    assert "strict-transport-security" in direct.get("/health/live").headers


def test_the_docs_page_may_load_its_own_scripts_only(client: TestClient) -> None:
    # given the API docs page
    page = client.get("/api/v1/docs")
    csp = page.headers["content-security-policy"]
    # then its one inline script is allowed by its hash, and nothing comes from elsewhere
    # (regression, issue 19: it loaded Swagger UI from a CDN, unpinned, without integrity)
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert csp == CSP.replace("script-src 'self'", f"script-src 'self' 'sha256-{digest}'")
    assert "http" not in csp and "unsafe-inline" not in csp
    srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert srcs == [
        "/api/v1/docs/static/swagger-ui.css",
        "/api/v1/docs/static/favicon.png",
        "/api/v1/docs/static/swagger-ui-bundle.js",
    ]
    for src in srcs:
        # and Kopilka serves every file the page names, revalidated rather than re-sent
        r = client.get(src)
        assert r.status_code == 200, src
        assert r.headers["cache-control"] == "no-cache"
        assert len(r.content) > 1000


def _preflight(c: TestClient, origin: str) -> object:
    return c.options(
        "/api/v1/members",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )


def test_cors_is_closed_by_default(client: TestClient) -> None:
    r = client.get("/api/v1/members", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = _preflight(client, "https://evil.example")
    assert "access-control-allow-origin" not in pre.headers  # type: ignore[attr-defined]


@pytest.fixture
def shop_origin(monkeypatch: pytest.MonkeyPatch, db: Database) -> Iterator[TestClient]:
    monkeypatch.setenv("KOPILKA_CORS_ORIGINS", "https://shop.example, https://m.shop.example")
    reset_settings_cache()
    with TestClient(create_app()) as c:
        yield c
    monkeypatch.delenv("KOPILKA_CORS_ORIGINS")
    reset_settings_cache()


def test_cors_opens_for_listed_origins_only(shop_origin: TestClient) -> None:
    ok = _preflight(shop_origin, "https://shop.example")
    assert ok.status_code == 200  # type: ignore[attr-defined]
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"  # type: ignore[attr-defined]
    assert "Authorization" in ok.headers["access-control-allow-headers"]  # type: ignore[attr-defined]
    other = _preflight(shop_origin, "https://evil.example")
    assert "access-control-allow-origin" not in other.headers  # type: ignore[attr-defined]


@pytest.mark.usefixtures("program")
def test_nul_characters_are_refused_at_the_door(client: TestClient, admin: dict[str, str]) -> None:
    # PostgreSQL cannot store NUL; the fuzzer found one reaching SQL through a query string
    for method, url, body, where in (
        ("GET", "/api/v1/audit?target_id=a%00b", None, "query"),
        ("GET", "/api/v1/members/a%00b", None, "path"),
        ("POST", "/api/v1/members", '{"name": "a\\u0000b"}', "body"),
    ):
        r = client.request(
            method, url, content=body, headers={**admin, "Content-Type": "application/json"}
        )
        assert r.status_code == 422, url
        assert r.json()["errors"] == [
            {"field": where, "in": where, "code": "nul_character", "message": "no NUL characters"}
        ]
        assert r.headers["x-content-type-options"] == "nosniff"
    # while an escaped backslash before "u0000" is just text
    r = client.post(
        "/api/v1/members",
        content='{"name": "a\\\\u0000b", "phone": "+79160000001"}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["name"] == "a\\u0000b"
