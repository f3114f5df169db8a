"""Signing in to the member app: one-time codes, one-time app links, device sessions."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from kopilka.core.db import Database, now
from kopilka.memberapp import cardcode, service
from kopilka.memberapp.models import AppLink, MemberDevice, SignInCode
from kopilka.members import service as members
from tests.conftest import KeyFactory
from tests.memberapp.conftest import (
    EMAIL,
    PHONE,
    MemberFactory,
    last_code,
    sign_in_by_code,
)

pytestmark = pytest.mark.usefixtures("program")


# ---------------------------------------------------------------------------- codes


def test_a_code_by_phone_signs_the_phone_in(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a member with a phone
    member_id = make_member()
    # when the app asks for a code with the phone written the local way
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": "8 916 123-45-67"})
    # then a code goes to the E.164 phone through the file channel
    assert asked.status_code == 202
    body = asked.json()
    assert body["channel"] == "sms"
    assert body["sent_to"] == "+7 *** *** 45 67"
    code = last_code(code_file, PHONE)
    assert len(code) == 6 and code.isdigit()
    # when the code is typed in
    done = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": body["challenge"], "code": code}
    )
    # then the device is signed in with an HttpOnly, SameSite=Lax session cookie
    assert done.status_code == 200
    assert done.json()["member_id"] == str(member_id)
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{service.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    # and the session reaches the member's own data
    me = client.get("/api/v1/app/me")
    assert me.status_code == 200
    assert me.json()["member"]["id"] == str(member_id)
    assert me.json()["member"]["phone"] == PHONE


def test_a_code_by_email_works_the_same(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a member with an email
    member_id = make_member()
    # when a code is asked for by email (any case) and typed in
    asked = client.post("/api/v1/app/sign-in/code", json={"email": "Olga@Example.com"})
    assert asked.status_code == 202 and asked.json()["channel"] == "email"
    assert asked.json()["sent_to"] == "o***@example.com"
    code = last_code(code_file, EMAIL)
    done = client.post(
        "/api/v1/app/sign-in/verify",
        json={"challenge": asked.json()["challenge"], "code": code},
    )
    # then the member is signed in
    assert done.status_code == 200 and done.json()["member_id"] == str(member_id)


def test_the_code_is_kept_only_as_a_hash(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a code sent to a member
    make_member()
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE})
    code = last_code(code_file, PHONE)
    # then the database holds neither the code nor anything that contains it
    with db.session() as s:
        row = s.execute(select(SignInCode)).scalar_one()
        raw = s.execute(text("SELECT code_hash FROM member_sign_in_codes")).scalar_one()
    assert row.id == uuid.UUID(asked.json()["challenge"])
    assert code not in raw and len(raw) == 64
    assert row.expires_at - row.created_at == dt.timedelta(minutes=10)


def test_nobody_with_that_phone_gets_the_same_answer_and_no_code(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given one member
    make_member()
    # when a code is asked for a phone nobody has
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": "+79169999999"})
    # then the answer has the same shape and status, and no code is made or sent
    assert asked.status_code == 202
    assert set(asked.json()) == {"challenge", "expires_at", "channel", "sent_to"}
    assert not code_file.exists()
    with db.session() as s:
        assert s.execute(select(SignInCode)).first() is None
    # and its challenge cannot be verified with any code
    r = client.post(
        "/api/v1/app/sign-in/verify",
        json={"challenge": asked.json()["challenge"], "code": "000000"},
    )
    assert r.status_code == 422 and r.json()["code"] == "sign_in_code_invalid"


def test_a_code_works_once(client: TestClient, code_file: Path, make_member: MemberFactory) -> None:
    # given a code used to sign in
    make_member()
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE}).json()
    code = last_code(code_file, PHONE)
    first = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": asked["challenge"], "code": code}
    )
    assert first.status_code == 200
    # when it is used again
    again = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": asked["challenge"], "code": code}
    )
    # then it is refused
    assert again.status_code == 422
    assert again.json()["code"] == "sign_in_code_expired"
    assert again.json()["errors"][0]["field"] == "challenge"


def test_an_expired_code_is_refused(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a code whose ten minutes are over
    make_member()
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE}).json()
    code = last_code(code_file, PHONE)
    with db.session() as s:
        s.execute(update(SignInCode).values(expires_at=now() - dt.timedelta(seconds=1)))
        s.commit()
    # when it is typed in
    r = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": asked["challenge"], "code": code}
    )
    # then it is refused and no device is made
    assert r.status_code == 422 and r.json()["code"] == "sign_in_code_expired"
    with db.session() as s:
        assert s.execute(select(MemberDevice)).first() is None


def test_five_wrong_tries_kill_the_code(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a code sent
    make_member()
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE}).json()
    code = last_code(code_file, PHONE)
    wrong = "111111" if code != "111111" else "222222"
    # when it is mistyped five times
    answers = [
        client.post(
            "/api/v1/app/sign-in/verify", json={"challenge": asked["challenge"], "code": wrong}
        )
        for _ in range(5)
    ]
    # then each wrong try says how many are left, naming the field
    assert [a.status_code for a in answers] == [422] * 5
    assert [a.json()["attempts_left"] for a in answers] == [4, 3, 2, 1, 0]
    assert answers[0].json()["errors"][0]["field"] == "code"
    # and afterwards even the right code is refused
    r = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": asked["challenge"], "code": code}
    )
    assert r.status_code == 422 and r.json()["code"] == "sign_in_code_expired"


def test_asking_for_codes_is_limited_per_phone(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a member
    make_member()
    # when codes are asked for the same phone six times in a row
    answers = [
        client.post("/api/v1/app/sign-in/code", json={"phone": PHONE}).status_code for _ in range(6)
    ]
    # then the sixth is refused with 429 and only five codes were sent
    assert answers == [202] * 5 + [429]
    assert len(code_file.read_text().splitlines()) == 5


def test_a_blocked_member_gets_no_code(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a blocked member
    member_id = make_member()
    with db.session() as s:
        members.set_status(s, member_id, "blocked", "test")
        s.commit()
    # when a code is asked for
    r = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE})
    # then the answer looks the same but nothing is sent
    assert r.status_code == 202
    assert not code_file.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "+7 916 123"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({}, "body"),
        ({"phone": PHONE, "email": EMAIL}, "body"),
    ],
)
def test_a_bad_phone_or_email_names_the_field(
    client: TestClient, code_file: Path, body: dict[str, str], field: str
) -> None:
    # when a code is asked for with a malformed destination
    r = client.post("/api/v1/app/sign-in/code", json=body)
    # then the answer is 422 naming the field, and nothing is sent
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert r.json()["errors"][0]["field"] == field
    assert not code_file.exists()


# ---------------------------------------------------------------------------- links


def test_an_app_link_from_the_till_signs_in_once(
    client: TestClient, auth: KeyFactory, make_member: MemberFactory, db: Database
) -> None:
    # given a member and a cashier
    member_id = make_member()
    cashier = auth("cashier")
    # when the till asks for an app link
    r = client.post(f"/api/v1/members/{member_id}/app-link", headers=cashier)
    # then it gets a URL into the app with the token in the fragment, for 15 minutes
    assert r.status_code == 201
    url, expires = r.json()["url"], dt.datetime.fromisoformat(r.json()["expires_at"])
    assert url.startswith("http://testserver/app/link#")
    assert dt.timedelta(minutes=14) < expires - now() <= dt.timedelta(minutes=15)
    token = url.split("#", 1)[1]
    # and only the token's hash is stored
    with db.session() as s:
        link = s.execute(select(AppLink)).scalar_one()
    assert token not in link.token_hash and link.created_by.startswith("api_key:")
    # when the phone opens the link
    done = client.post("/api/v1/app/sign-in/link", json={"token": token})
    # then it is signed in as the member
    assert done.status_code == 200
    assert done.json()["member_id"] == str(member_id)
    assert done.json()["device"]["signed_in_by"] == "link"
    # and the link does not work a second time
    client.cookies.clear()
    again = client.post("/api/v1/app/sign-in/link", json={"token": token})
    assert again.status_code == 422 and again.json()["code"] == "app_link_invalid"


def test_an_expired_or_unknown_link_is_refused(
    client: TestClient, auth: KeyFactory, make_member: MemberFactory, db: Database
) -> None:
    # given a link past its time
    member_id = make_member()
    url = client.post(f"/api/v1/members/{member_id}/app-link", headers=auth("cashier")).json()[
        "url"
    ]
    with db.session() as s:
        s.execute(update(AppLink).values(expires_at=now() - dt.timedelta(seconds=1)))
        s.commit()
    # when it, or a made-up token, is opened
    for token in (url.split("#", 1)[1], "x" * 43, "short"):
        r = client.post("/api/v1/app/sign-in/link", json={"token": token})
        # then it is refused naming the token
        assert r.status_code == 422
        assert r.json()["code"] == "app_link_invalid"
        assert r.json()["errors"][0]["field"] == "token"


def test_the_app_link_replays_with_the_same_idempotency_key(
    client: TestClient, auth: KeyFactory, make_member: MemberFactory, db: Database
) -> None:
    # given a member
    member_id = make_member()
    headers = {**auth("cashier"), "Idempotency-Key": "link-1"}
    # when the till asks twice with one Idempotency-Key
    first = client.post(f"/api/v1/members/{member_id}/app-link", headers=headers)
    second = client.post(f"/api/v1/members/{member_id}/app-link", headers=headers)
    # then both answers are the same link and one link exists
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    with db.session() as s:
        assert len(s.execute(select(AppLink)).all()) == 1
        stored = s.execute(text("SELECT response FROM idempotency_keys")).scalar_one()
    # and the stored answer does not hold a working link
    assert first.json()["url"].split("#")[1] not in str(stored)


def test_app_links_are_for_staff_and_active_members(
    client: TestClient, auth: KeyFactory, make_member: MemberFactory, db: Database
) -> None:
    # given a member
    member_id = make_member()
    # then an analyst may not issue a link, and nobody can for a member that does not exist
    r = client.post(f"/api/v1/members/{member_id}/app-link", headers=auth("analyst"))
    assert r.status_code == 403
    r = client.post(f"/api/v1/members/{uuid.uuid4()}/app-link", headers=auth("manager"))
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


# ---------------------------------------------------------------------------- sessions


def test_devices_are_listed_and_revoked(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a member signed in on two phones
    make_member()
    other = TestClient(client.app)
    first = sign_in_by_code(other, code_file)
    second = sign_in_by_code(client, code_file)
    # when the second lists its devices
    listed = client.get("/api/v1/app/sessions").json()["items"]
    # then both are there, newest first, the current one marked
    assert [d["id"] for d in listed] == [str(second.device_id), str(first.device_id)]
    assert [d["current"] for d in listed] == [True, False]
    # when it signs the first one out
    r = client.post(
        f"/api/v1/app/sessions/{first.device_id}/revoke", headers=second.headers, json={}
    )
    assert r.status_code == 200
    # then the first phone's session has ended and its card code stops resolving
    assert other.get("/api/v1/app/me").status_code == 401
    with db.session() as s:
        device = s.get(MemberDevice, first.device_id)
        assert device is not None and device.revoked_at is not None
        code = cardcode.card_code(
            device.card_no, base64.urlsafe_b64decode(device.card_secret), now()
        )
        assert service.resolve_card_code(s, code, now()) is None
    # and the list shows one device
    assert len(client.get("/api/v1/app/sessions").json()["items"]) == 1


def test_another_members_device_cannot_be_revoked(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given two members signed in on their phones
    make_member()
    make_member(phone="+79160000002", email="b@example.com")
    other = TestClient(client.app)
    theirs = sign_in_by_code(other, code_file, "+79160000002")
    mine = sign_in_by_code(client, code_file)
    # when one tries to sign the other's phone out
    r = client.post(f"/api/v1/app/sessions/{theirs.device_id}/revoke", headers=mine.headers)
    # then it is 404, as if there were no such device, and the other stays signed in
    assert r.status_code == 404 and r.json()["code"] == "device_not_found"
    assert other.get("/api/v1/app/me").status_code == 200


def test_changes_need_the_csrf_token(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a signed-in phone
    make_member()
    signed = sign_in_by_code(client, code_file)
    # when it changes consents without the CSRF header, or with a wrong one
    for headers in ({}, {"X-CSRF-Token": "nope"}):
        r = client.post("/api/v1/app/consents", json={"email": True}, headers=headers)
        # then it is refused
        assert r.status_code == 403 and r.json()["code"] == "csrf_invalid"
    # and with the token it works
    r = client.post("/api/v1/app/consents", json={"email": True}, headers=signed.headers)
    assert r.status_code == 200
    assert r.json()["current"] == {"email": True, "sms": False, "push": False}


def test_sign_out_ends_the_session(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a signed-in phone
    make_member()
    signed = sign_in_by_code(client, code_file)
    # when it signs out
    r = client.post("/api/v1/app/sign-out", headers=signed.headers, json={})
    # then the cookie is cleared and the old token no longer works
    assert r.status_code == 200
    assert f'{service.COOKIE}=""' in r.headers["set-cookie"]
    assert client.get("/api/v1/app/me").status_code == 401


def test_signing_in_again_signs_the_previous_session_out(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a phone signed in
    make_member()
    first = sign_in_by_code(client, code_file)
    # when it signs in again (another code)
    second = sign_in_by_code(client, code_file)
    # then only the new device is live
    with db.session() as s:
        old = s.get(MemberDevice, first.device_id)
        assert old is not None and old.revoked_at is not None
    assert [d["id"] for d in client.get("/api/v1/app/sessions").json()["items"]] == [
        str(second.device_id)
    ]


def test_the_cookie_is_secure_over_tls(
    client: TestClient, code_file: Path, make_member: MemberFactory
) -> None:
    # given a request that came through a TLS-terminating proxy
    make_member()
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": PHONE}).json()
    r = client.post(
        "/api/v1/app/sign-in/verify",
        json={"challenge": asked["challenge"], "code": last_code(code_file, PHONE)},
        headers={"X-Forwarded-Proto": "https"},
    )
    # then the session cookie is Secure
    assert r.status_code == 200
    assert "Secure" in r.headers["set-cookie"]


def test_a_session_slides_on_use_and_ends_when_expired(
    client: TestClient, code_file: Path, make_member: MemberFactory, db: Database
) -> None:
    # given a device last seen two hours ago
    make_member()
    signed = sign_in_by_code(client, code_file)
    earlier = now() - dt.timedelta(hours=2)
    with db.session() as s:
        s.execute(
            update(MemberDevice).values(
                last_seen_at=earlier, expires_at=now() + dt.timedelta(days=1)
            )
        )
        s.commit()
    # when it is used
    assert client.get("/api/v1/app/me").status_code == 200
    # then its last use is now and it lives another 180 days
    with db.session() as s:
        device = s.get(MemberDevice, signed.device_id)
        assert device is not None
        assert now() - device.last_seen_at < dt.timedelta(minutes=1)
        assert device.expires_at - device.last_seen_at == dt.timedelta(days=180)
        # when its time is over
        s.execute(update(MemberDevice).values(expires_at=now() - dt.timedelta(seconds=1)))
        s.commit()
    # then the session no longer works
    assert client.get("/api/v1/app/me").status_code == 401


def test_asking_for_codes_is_limited_per_address(client: TestClient, code_file: Path) -> None:
    # given one address asking for codes for twenty different phones (the limit per hour)
    answers = [
        client.post("/api/v1/app/sign-in/code", json={"phone": f"+7916000{i:04d}"}).status_code
        for i in range(20)
    ]
    assert answers == [202] * 20
    # when it asks for a twenty-first, then it is refused for a while, saying how long
    r = client.post("/api/v1/app/sign-in/code", json={"phone": "+79160009999"})
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    # (a sliding window: the wait is less than two windows, however the hits fell)
    assert 0 < int(r.headers["Retry-After"]) < 2 * 3600


def test_wrong_links_and_codes_are_limited_per_address(client: TestClient) -> None:
    # given one address trying thirty made-up sign-in links (the limit per 15 minutes)
    answers = [
        client.post("/api/v1/app/sign-in/link", json={"token": f"{i:043d}"}).status_code
        for i in range(30)
    ]
    assert answers == [422] * 30
    # when it tries once more, with a link or a code, then it is refused for a while
    r = client.post("/api/v1/app/sign-in/link", json={"token": "y" * 43})
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) < 2 * 900
    r = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": str(uuid.uuid4()), "code": "000000"}
    )
    assert r.status_code == 429
