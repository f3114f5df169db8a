"""Web Push: a local endpoint stands in for the push service, receives the encrypted,
VAPID-signed message after a purchase, and the test decrypts it (RFC 8291, done here with
``cryptography`` alone, independently of the library that encrypted it)."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database, now
from kopilka.core.jobs import load_jobs
from kopilka.memberapp import jobs, push
from kopilka.memberapp.models import PushNotice, PushSubscription, VapidKey
from tests.conftest import KeyFactory
from tests.memberapp.conftest import MemberFactory, SignedIn, sign_in_by_code

pytestmark = pytest.mark.usefixtures("program")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------------- the stand-in


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """A local push service: records what is posted; ``/gone/…`` answers 410."""

    url: str
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def push_service() -> Iterator[PushService]:
    state = PushService("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(410 if self.path.startswith("/gone/") else 201)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Browser:
    """What a browser keeps for a push subscription: its key pair and auth secret."""

    private: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64(self.public), "auth": b64(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 (Message Encryption for Web Push) over RFC 8188 ``aes128gcm``."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        server_public = body[21 : 21 + idlen]
        ciphertext = body[21 + idlen :]
        assert rs >= 18 and len(ciphertext) <= rs  # one record
        shared = self.private.exchange(
            ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_public)
        )
        info = b"WebPush: info\x00" + self.public + server_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(
            ikm
        )
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(
            ikm
        )
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        stripped = padded.rstrip(b"\x00")
        assert stripped.endswith(b"\x02")  # the last record's delimiter
        return stripped[:-1]


def verify_vapid(header: str, server_key: str, audience: str) -> dict[str, Any]:
    """Check the ``vapid t=…, k=…`` header (RFC 8292): the key is the server's and the
    JWT is signed with it (ES256); return the claims."""
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == server_key
    head, payload, signature = parts["t"].split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(server_key))
    raw = unb64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if bad
    assert json.loads(unb64(head)) == {"typ": "JWT", "alg": "ES256"}
    claims: dict[str, Any] = json.loads(unb64(payload))
    assert claims["aud"] == audience
    return claims


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def signed(client: TestClient, code_file: Path, make_member: MemberFactory) -> SignedIn:
    make_member()
    return sign_in_by_code(client, code_file)


def _purchase(client: TestClient, auth: KeyFactory, member_id: str, external_id: str) -> str:
    r = client.post(
        "/api/v1/purchases",
        json={
            "external_id": external_id,
            "member": {"id": member_id},
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [{"sku": "COFFEE", "quantity": "1", "unit_price": "450.00"}],
        },
        headers=auth("cashier"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# ---------------------------------------------------------------------------- tests


def test_a_purchase_pushes_an_encrypted_vapid_signed_message(
    client: TestClient,
    db: Database,
    signed: SignedIn,
    auth: KeyFactory,
    push_service: PushService,
) -> None:
    # given a member whose phone subscribed to push (in Russian)
    browser = Browser.new()
    key = client.get("/api/v1/app/push/key").json()["public_key"]
    endpoint = f"{push_service.url}/push/abc123"
    r = client.post(
        "/api/v1/app/push/subscriptions",
        json={**browser.subscription(endpoint), "lang": "ru"},
        headers=signed.headers,
    )
    assert r.status_code == 201
    # when the member buys something and earns points, and the worker's push job runs
    purchase_id = _purchase(client, auth, str(signed.member_id), "R-PUSH-1")
    with db.session() as s:
        sent = jobs.push_events(s, now())
    # then one message reached the push service
    assert sent == 1
    assert len(push_service.received) == 1
    got = push_service.received[0]
    assert got.path == "/push/abc123"
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["ttl"] == "86400"
    # signed with the server's VAPID key for the push service's origin
    claims = verify_vapid(got.headers["authorization"], key, push_service.url)
    assert claims["sub"] == "mailto:kopilka@localhost"
    assert 0 < claims["exp"] - now().timestamp() <= 24 * 3600
    # and encrypted to the browser's key: decrypted, it is the notification in Russian
    message = json.loads(browser.decrypt(got.body))
    assert message == {
        "title": "+22,50 Бонусные рубли",
        "body": "Начислено за покупку. Спасибо!",
        "url": "/app/history",
        "tag": f"earned-{purchase_id}",
    }
    # when the job runs again, nothing is pushed twice
    with db.session() as s:
        assert jobs.push_events(s, now()) == 0
        notice = s.execute(select(PushNotice)).scalar_one()
    assert notice.member_id == signed.member_id and notice.sent == 1
    assert len(push_service.received) == 1


def test_the_worker_runs_the_push_job(
    client: TestClient,
    db: Database,
    signed: SignedIn,
    auth: KeyFactory,
    push_service: PushService,
) -> None:
    # given a subscribed phone and a purchase
    browser = Browser.new()
    client.post(
        "/api/v1/app/push/subscriptions",
        json=browser.subscription(f"{push_service.url}/push/w"),
        headers=signed.headers,
    )
    _purchase(client, auth, str(signed.member_id), "R-PUSH-W")
    # when the worker runs its due jobs
    assert "memberapp.push" in load_jobs()
    from kopilka.core.jobs import run_due_jobs

    with db.session() as s:
        results = run_due_jobs(s, "test-worker")
    # then the push job sent the message (in English: the subscription's language)
    assert results["memberapp.push"] == 1
    message = json.loads(browser.decrypt(push_service.received[0].body))
    assert message["title"] == "+22.50 Бонусные рубли"
    assert message["body"] == "Earned for your purchase. Thank you!"


def test_events_from_before_the_subscription_are_not_pushed(
    client: TestClient,
    db: Database,
    signed: SignedIn,
    auth: KeyFactory,
    push_service: PushService,
) -> None:
    # given a purchase made before the phone subscribed
    _purchase(client, auth, str(signed.member_id), "R-PUSH-OLD")
    client.post(
        "/api/v1/app/push/subscriptions",
        json=Browser.new().subscription(f"{push_service.url}/push/late"),
        headers=signed.headers,
    )
    # when the job runs
    with db.session() as s:
        assert jobs.push_events(s, now()) == 0
    # then nothing stale is pushed
    assert push_service.received == []


def test_a_subscription_the_push_service_says_is_gone_is_dropped(
    client: TestClient,
    db: Database,
    signed: SignedIn,
    auth: KeyFactory,
    push_service: PushService,
) -> None:
    # given a subscription whose push service answers 410 Gone
    client.post(
        "/api/v1/app/push/subscriptions",
        json=Browser.new().subscription(f"{push_service.url}/gone/1"),
        headers=signed.headers,
    )
    _purchase(client, auth, str(signed.member_id), "R-PUSH-GONE")
    # when the job pushes to it
    with db.session() as s:
        assert jobs.push_events(s, now()) == 0
        # then it is forgotten
        assert s.execute(select(PushSubscription)).first() is None
    assert len(push_service.received) == 1


def test_send_push_reaches_every_subscribed_device(
    client: TestClient, db: Database, signed: SignedIn, push_service: PushService
) -> None:
    # given two subscriptions of the member
    phones = [Browser.new(), Browser.new()]
    for i, browser in enumerate(phones):
        client.post(
            "/api/v1/app/push/subscriptions",
            json=browser.subscription(f"{push_service.url}/push/{i}"),
            headers=signed.headers,
        )
    # when a notification is sent to the member
    with db.session() as s:
        sent = push.send_push(s, signed.member_id, "Hello", "A message", "/app/profile")
        s.commit()
    # then both phones get it, each encrypted to its own key
    assert sent == 2
    by_path = {r.path: r.body for r in push_service.received}
    for i, browser in enumerate(phones):
        assert json.loads(browser.decrypt(by_path[f"/push/{i}"])) == {
            "title": "Hello",
            "body": "A message",
            "url": "/app/profile",
        }


def test_subscriptions_are_kept_encrypted_and_unique_per_endpoint(
    client: TestClient, db: Database, signed: SignedIn
) -> None:
    # given a browser subscribed twice with the same endpoint
    endpoint = "https://fcm.googleapis.com/fcm/send/abc:def"
    browser = Browser.new()
    for _ in range(2):
        r = client.post(
            "/api/v1/app/push/subscriptions",
            json=browser.subscription(endpoint),
            headers=signed.headers,
        )
        assert r.status_code == 201
    # then one subscription is kept, and neither the endpoint nor the keys are in the clear
    with db.session() as s:
        rows = s.execute(text("SELECT endpoint, p256dh, auth FROM push_subscriptions")).all()
    assert len(rows) == 1
    assert endpoint not in rows[0][0] and b64(browser.auth) not in rows[0][2]
    # when it unsubscribes
    r = client.post(
        "/api/v1/app/push/unsubscribe", json={"endpoint": endpoint}, headers=signed.headers
    )
    # then it is gone (the bytes: in Python ``True == 1``, and a response model once
    # turned the count into ``true``)
    assert r.content == b'{"removed":1}'
    with db.session() as s:
        assert s.execute(select(PushSubscription)).first() is None


@pytest.mark.parametrize(
    ("endpoint", "keys", "field"),
    [
        ("https://evil.example.com/push", None, "endpoint"),
        ("http://fcm.googleapis.com/fcm/send/x", None, "endpoint"),
        ("https://fcm.googleapis.com.evil.com/x", None, "endpoint"),
        ("ftp://127.0.0.1/x", None, "endpoint"),
        ("https://fcm.googleapis.com/fcm/send/x", {"p256dh": "AAAA", "auth": None}, "keys.p256dh"),
        ("https://fcm.googleapis.com/fcm/send/x", {"p256dh": None, "auth": "AAAA"}, "keys.auth"),
    ],
)
def test_only_push_services_and_real_keys_are_accepted(
    client: TestClient,
    db: Database,
    signed: SignedIn,
    endpoint: str,
    keys: dict[str, str | None] | None,
    field: str,
) -> None:
    # given a subscription with a bad endpoint or key
    body = Browser.new().subscription(endpoint)
    for k, v in (keys or {}).items():
        if v is not None:
            body["keys"][k] = v
    # when it is sent
    r = client.post("/api/v1/app/push/subscriptions", json=body, headers=signed.headers)
    # then it is refused naming the field, and nothing is kept
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field
    with db.session() as s:
        assert s.execute(select(PushSubscription)).first() is None


def test_loopback_endpoints_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given production settings
    monkeypatch.setenv("KOPILKA_ENVIRONMENT", "production")
    monkeypatch.setenv("KOPILKA_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("KOPILKA_DATA_KEYS", "k1:" + b64(os.urandom(32)))
    monkeypatch.setenv("KOPILKA_INDEX_KEY", b64(os.urandom(32)))
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_CHANNEL", "file")
    reset_settings_cache()
    try:
        # then a loopback endpoint is refused and a push service's is accepted
        with pytest.raises(Exception) as refused:
            push.check_endpoint("http://127.0.0.1:8080/push")
        assert getattr(refused.value, "code", None) == "validation_error"
        push.check_endpoint("https://updates.push.services.mozilla.com/wpush/v2/x")
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_the_vapid_keys_are_made_once_and_kept(
    client: TestClient, db: Database, signed: SignedIn
) -> None:
    # when two callers ask for the application server key
    first = client.get("/api/v1/app/push/key").json()["public_key"]
    second = client.get("/api/v1/app/push/key").json()["public_key"]
    # then it is one P-256 public key, stored once with its private key encrypted
    assert first == second and len(unb64(first)) == 65 and unb64(first)[0] == 4
    with db.session() as s:
        row = s.execute(select(VapidKey)).scalar_one()
        raw = s.execute(text("SELECT private_pem FROM vapid_keys")).scalar_one()
    assert row.public_key == first
    assert "PRIVATE KEY" in row.private_pem and "PRIVATE KEY" not in raw
