"""A real local HTTP receiver for webhook tests: a threaded ``http.server`` on 127.0.0.1
that verifies every signature, records what it accepted, and can be told to fail, to be
slow, to hold every request until the test lets it go, or to stop listening altogether."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database, now
from kopilka.webhooks.signing import verify_signature
from kopilka.worker.loop import Worker

SECRET = "whsec-test-0123456789abcdef"
HOLD_LIMIT_SECONDS = 120  # a held request is let go after this even if the test forgot


@dataclass
class Hit:
    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    signature_ok: bool

    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str
    secret: str = SECRET
    status: int = 200  # what it answers; 500 makes every delivery fail
    delay: float = 0.0  # seconds before answering
    # if set, every request waits (after it is recorded) until this event is set: what is
    # in flight is then known exactly, however slow the machine
    hold: threading.Event | None = None
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if 200 <= h.status < 300]

    def events(self) -> list[dict[str, Any]]:
        """What it acknowledged, in the order it arrived (duplicates included)."""
        return [h.event() for h in self.accepted()]

    def event_ids(self) -> set[str]:
        """The deduplicated set, as a receiver keeps it."""
        return {e["id"] for e in self.events()}

    def all_signed(self) -> bool:
        with self.lock:
            return all(h.signature_ok for h in self.hits)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a sender killed mid-way
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class ReceiverServer:
    """The receiver's HTTP server; ``stop()`` closes the port (connection refused),
    ``start()`` listens again on the same port, keeping what was received."""

    def __init__(self) -> None:
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.receiver: Receiver | None = None
        self.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                try:
                    body = self.rfile.read(length)
                except ConnectionResetError:
                    return
                if len(body) < length:  # the sender died mid-request (chaos tests)
                    return
                rec = owner.receiver
                assert rec is not None
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify_signature(rec.secret, headers.get("kopilka-signature", ""), body)
                status = rec.status if ok else 400
                with rec.lock:  # recorded on arrival, whatever happens to the answer
                    rec.hits.append(Hit(time.monotonic(), self.path, headers, body, status, ok))
                if rec.hold is not None:
                    rec.hold.wait(HOLD_LIMIT_SECONDS)
                if rec.delay:
                    time.sleep(rec.delay)
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", rec.url + "/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def start(self) -> None:
        server = _QuietServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        if self.receiver is None:
            self.receiver = Receiver(url=f"http://127.0.0.1:{self.port}/hook")
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver_server() -> Iterator[ReceiverServer]:
    rs = ReceiverServer()
    yield rs
    rs.stop()


@pytest.fixture
def receiver(receiver_server: ReceiverServer) -> Receiver:
    assert receiver_server.receiver is not None
    return receiver_server.receiver


class Clock:
    """An injected clock for workers: time stands still until ``advance``."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.t = start or now()

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


def subscribe(
    client: TestClient,
    admin: dict[str, str],
    url: str,
    events: list[str] | None = None,
    secret: str = SECRET,
) -> str:
    """A webhook for ``url`` through the API; its id."""
    r = client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"url": url, "events": events or ["*"], "secret": secret},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def drain(db: Database, **worker: Any) -> int:
    """Run worker batches (no jobs) until one finds nothing due; deliveries attempted."""
    w = Worker(db, jobs=False, **worker)
    total = 0
    while (n := w.run(once=True)) > 0:
        total += n
    return total
