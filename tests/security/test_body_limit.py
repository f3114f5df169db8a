"""Request body limit: 413 ``payload_too_large`` at once, before a byte over the limit is read.

Regression (issue 19): nothing capped a request body, so a 10 MB body was parsed for 2-3 s
before its 422 and 30 MB took 24 s. The limit is ``KOPILKA_MAX_BODY_BYTES`` (4 MiB), or a
route's own larger one (the coupon import); the tests set a small limit to stay small.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from kopilka.core.config import Settings, reset_settings_cache
from kopilka.core.db import Database
from kopilka.coupons.api import MAX_IMPORT_BYTES
from kopilka.main import create_app
from kopilka.purchases.models import Purchase
from kopilka.security.middleware import BodyLimitMiddleware
from tests.conftest import KeyFactory
from tests.coupons.test_coupons_api import POOLS, create

LIMIT = 16 * 1024


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("KOPILKA_MAX_BODY_BYTES", str(LIMIT))
    reset_settings_cache()
    yield LIMIT
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def small(db: Database, small_limit: int) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def till(auth: KeyFactory) -> dict[str, str]:
    return auth("cashier", store="msk-01")


def receipt_of_size(size: int, external_id: str = "BIG-1") -> bytes:
    """A valid receipt of exactly ``size`` bytes (JSON padded with white space)."""
    body = json.dumps(
        {
            "external_id": external_id,
            "store": "msk-01",
            "occurred_at": "2026-11-22T10:00:00+03:00",
            "lines": [{"sku": "MILK-1L", "quantity": "2", "unit_price": "89.90"}],
        }
    ).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def assert_too_large(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["connection"] == "close"
    assert r.headers["x-content-type-options"] == "nosniff"
    body = r.json()
    assert body["code"] == "payload_too_large"
    assert body["max_body_bytes"] == limit
    assert body["errors"] == [
        {"field": "body", "in": "body", "code": "too_large", "message": f"at most {limit} bytes"}
    ]
    assert body["request_id"] == r.headers["x-request-id"]


def purchases(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Purchase)) or 0)


def test_the_default_fits_the_largest_receipt_the_api_takes() -> None:
    # given the largest receipt PurchaseIn allows: 500 lines, every text at its longest, in
    # Cyrillic escaped as \uXXXX (Python's json.dumps does so), pretty-printed
    line = {
        "sku": "Ш" * 100,
        "name": "Щ" * 300,
        "category": "Ж" * 100,
        "quantity": "123456789.999",
        "unit_price": "9999999999999.99",
    }
    body = {
        "external_id": "Э" * 100,
        "member": {"card": "7" * 32},
        "store": "М" * 64,
        "channel": "online",
        "occurred_at": "2026-11-22T10:00:00.000000+03:00",
        "lines": [line] * 500,
        "coupons": ["К" * 64] * 20,
        "redeem": {"currency": "Б" * 16, "amount": "9999999999.9999"},
        "hold": True,
        "quote_id": "Q" * 64,
    }
    size = len(json.dumps(body, indent=4).encode())
    # then the default limit takes it with room to spare
    assert size < Settings().max_body_bytes // 2


@pytest.mark.usefixtures("program")
def test_a_body_at_the_limit_is_taken_and_one_byte_more_is_refused(
    small: TestClient, till: dict[str, str], program: Database
) -> None:
    headers = {**till, "Content-Type": "application/json"}
    # when a receipt of exactly the limit is sent
    ok = small.post("/api/v1/purchases", content=receipt_of_size(LIMIT), headers=headers)
    # then it is recorded
    assert ok.status_code == 201, ok.text
    # when one of a byte more is sent, declared or chunked (no Content-Length)
    declared = small.post(
        "/api/v1/purchases", content=receipt_of_size(LIMIT + 1, "BIG-2"), headers=headers
    )
    chunked = small.post(
        "/api/v1/purchases",
        content=iter([receipt_of_size(LIMIT + 1, "BIG-3")]),
        headers=headers,
    )
    # then both are refused and nothing is recorded
    assert "content-length" not in chunked.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(declared, LIMIT)
    assert_too_large(chunked, LIMIT)
    assert purchases(program) == 1


def test_the_default_limit_is_four_mebibytes(client: TestClient) -> None:
    # when a body of 4 MiB + 1 byte is sent, to a route that does not even exist
    r = client.post("/api/v1/nowhere", content=b"x" * (4 * 1024 * 1024 + 1))
    # then it is refused for its size
    assert_too_large(r, 4 * 1024 * 1024)


def test_the_console_and_the_member_app_are_limited_too(small: TestClient) -> None:
    for path in ("/admin/login", "/admin/programme", "/api/v1/app/sign-in/code"):
        # when each gets a form or JSON body over the limit
        r = small.post(
            path,
            content=b"email=" + b"a" * LIMIT,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        # then it is refused before anything reads it
        assert_too_large(r, LIMIT)


@pytest.mark.usefixtures("program")
def test_the_coupon_import_takes_more_than_the_default_up_to_its_own_limit(
    small: TestClient, admin: dict[str, str]
) -> None:
    # given a coupon pool, and 2,000 codes to import: a CSV twice the (small) default limit
    pool = create(small, admin)
    csv_body = "".join(f"IMPORTED-{i:06d}\n" for i in range(2000)).encode()
    assert LIMIT < len(csv_body) < 2 * LIMIT + 1024
    url = f"{POOLS}/{pool['id']}/codes/import"
    headers = {**admin, "Content-Type": "text/csv"}
    # when it is sent, declared and chunked
    declared = small.post(url, content=csv_body, headers=headers)
    chunked = small.post(
        url, content=iter([csv_body.replace(b"IMPORTED", b"CHUNKED-")]), headers=headers
    )
    # then both are imported
    assert declared.status_code == 201, declared.text
    assert chunked.status_code == 201, chunked.text
    assert chunked.json()["pool"]["code_count"] == 4000
    # when a body over the import's own limit is sent, declared and chunked
    over = b"X" * (MAX_IMPORT_BYTES + 1)
    refused = small.post(url, content=over, headers=headers)
    refused_chunked = small.post(url, content=iter([over]), headers=headers)
    # then both are refused, naming that limit, and nothing more is imported
    assert_too_large(refused, MAX_IMPORT_BYTES)
    assert_too_large(refused_chunked, MAX_IMPORT_BYTES)
    # the larger limit is the import's only: another route of the pool still has the default
    other = small.post(f"{POOLS}/{pool['id']}/generate", content=csv_body, headers=headers)
    assert_too_large(other, LIMIT)
    after = small.get(f"{POOLS}/{pool['id']}", headers=admin).json()
    assert after["code_count"] == 4000


def test_the_title_is_in_russian_for_a_russian_caller(small: TestClient) -> None:
    r = small.post("/api/v1/members", content=b"{" * (LIMIT + 1), headers={"Accept-Language": "ru"})
    assert r.status_code == 413
    assert r.json()["title"] == "Слишком большой запрос"


# ----------------------------------------------------------------- the middleware alone


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """An application that reads the whole body and answers its length."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            await send({"type": "http.response.start", "status": 499, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=3 * 1024),
    cuts=st.lists(st.integers(min_value=0, max_value=3 * 1024), max_size=6),
    declared=st.booleans(),
)
def test_a_body_is_refused_exactly_when_it_passes_the_limit(
    size: int, cuts: list[int], declared: bool
) -> None:
    # given a limit of 1 KiB and a body of ``size`` bytes arriving in chunks cut anywhere,
    # with or without a Content-Length
    limit = 1024
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOPILKA_MAX_BODY_BYTES", str(limit))
        reset_settings_cache()
        middleware = BodyLimitMiddleware(_echo, routes=[])
    reset_settings_cache()
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    chunks = [b"x" * (b - a) for a, b in itertools.pairwise(bounds)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        if not incoming:
            return {"type": "http.disconnect"}
        message = incoming.pop(0)
        read += len(message["body"])
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-length", str(size).encode())] if declared else []
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/x",
        "headers": headers,
        "state": {},
    }
    # when it is sent through the middleware
    # on a thread of its own: the browser tests keep Playwright's event loop running on
    # this one for the whole session (regression: "Already running asyncio in this
    # thread" when this test ran after them in CI)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, middleware, scope, receive, send).result()
    # then it is answered 413 exactly when it is larger than the limit, and then only once
    status = [m["status"] for m in sent if m["type"] == "http.response.start"]
    if size <= limit:
        assert status == [200]
        assert sent[-1]["body"] == str(size).encode()
    else:
        assert status == [413]
        # a declared size is refused before a byte is read; a chunked body no later than
        # the chunk that passes the limit
        if declared:
            assert read == 0
        else:
            assert read - max(len(c) for c in chunks) <= limit < read


# ------------------------------------------------------------------- over real HTTP


@pytest.fixture
def server(db: Database, small_limit: int) -> Iterator[tuple[str, int]]:
    """The whole application under uvicorn in a thread, with the small limit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", port
    finally:
        srv.should_exit = True
        thread.join(30)


# Generous for a loaded machine; without the limit these requests are never answered at
# all (the server waits for a body that is not coming).
PROMPT = 15.0


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read a response to the end (the server closes the connection after a 413)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_over_http_a_declared_size_over_the_limit_is_answered_before_the_body_is_sent(
    server: tuple[str, int],
) -> None:
    # given a request declaring 100 MB, of which not a byte is sent
    with socket.create_connection(server, timeout=PROMPT) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/v1/purchases HTTP/1.1\r\nHost: kopilka\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        )
        # when the server answers
        status, headers, body = _answer(sock)
        elapsed = time.monotonic() - started
    # then it is 413 at once, and the server closed the connection
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "payload_too_large"
    assert elapsed < PROMPT


def test_over_http_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    server: tuple[str, int],
) -> None:
    # given a chunked request sending one byte more than the limit and then nothing (no
    # last chunk: the body is not over as far as the server knows)
    with socket.create_connection(server, timeout=PROMPT) as sock:
        sock.sendall(
            b"POST /api/v1/purchases HTTP/1.1\r\nHost: kopilka\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        started = time.monotonic()
        for _ in range(LIMIT // 4096):
            sock.sendall(b"1000\r\n" + b" " * 4096 + b"\r\n")
        sock.sendall(b"1\r\n \r\n")
        # when the server answers
        status, headers, body = _answer(sock)
        elapsed = time.monotonic() - started
    # then it is 413 without waiting for the rest
    assert status == 413
    assert json.loads(body)["max_body_bytes"] == LIMIT
    assert headers["connection"] == "close"
    assert elapsed < PROMPT


@pytest.mark.usefixtures("program")
def test_over_http_a_body_at_the_limit_works(
    server: tuple[str, int], till: dict[str, str], program: Database
) -> None:
    host, port = server
    body = receipt_of_size(LIMIT, "AT-2")
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as http:
        # when a receipt of exactly the limit is sent, declared and chunked
        declared = http.post(
            "/api/v1/purchases",
            content=receipt_of_size(LIMIT, "AT-1"),
            headers={**till, "Content-Type": "application/json"},
        )
        chunked = http.post(
            "/api/v1/purchases",
            content=iter([body[:5000], body[5000:]]),
            headers={**till, "Content-Type": "application/json"},
        )
    # then both are recorded
    assert declared.status_code == 201, declared.text
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert chunked.status_code == 201, chunked.text
    assert purchases(program) == 2
