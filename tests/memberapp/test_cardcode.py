"""The rotating card code: TOTP arithmetic (pure) and its resolution at the till."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from kopilka.core.db import Database, now
from kopilka.memberapp import cardcode, service
from kopilka.memberapp.models import MemberDevice
from tests.conftest import KeyFactory
from tests.memberapp.conftest import MemberFactory, SignedIn, sign_in_by_code

RFC_SECRET = b"12345678901234567890123456789012"


@pytest.mark.parametrize(
    ("unix", "expected"),
    [
        (59, "46119246"),
        (1111111109, "68084774"),
        (1111111111, "67062674"),
        (1234567890, "91819424"),
        (2000000000, "90698825"),
        (20000000000, "77737706"),
    ],
)
def test_the_password_is_rfc_6238_with_sha_256(unix: int, expected: str) -> None:
    # given the test vectors of RFC 6238 (appendix B, HMAC-SHA-256, 8 digits)
    # then the one-time password of each moment is the published one
    assert cardcode.otp(RFC_SECRET, unix // 30, digits=8) == expected


def test_a_card_code_is_the_device_number_and_six_digits() -> None:
    # given a device and a moment
    at = dt.datetime(2026, 11, 24, 10, 0, 15, tzinfo=dt.UTC)
    # then the code is 16 digits: the device's number, then the password of the step
    code = cardcode.card_code("0123456789", RFC_SECRET, at)
    assert code == "0123456789" + cardcode.otp(RFC_SECRET, int(at.timestamp()) // 30)
    assert len(code) == 16 and code.isdigit()


@pytest.mark.parametrize(
    ("typed", "parts"),
    [
        ("0123456789654321", ("0123456789", "654321")),
        ("0123 4567 8965 4321", ("0123456789", "654321")),
        ("0123-4567-8965-4321", ("0123456789", "654321")),
        ("012345678965432", None),
        ("01234567896543210", None),
        ("0123456789ABCDEF", None),
        ("０１２３４５６７８９６５４３２１", None),  # full-width digits are not ours
    ],
)
def test_codes_are_read_as_typed_or_scanned(typed: str, parts: tuple[str, str] | None) -> None:
    assert cardcode.split(typed) == parts


@given(
    secret=st.binary(min_size=16, max_size=64),
    seconds=st.integers(min_value=60, max_value=4_000_000_000),
    drift=st.integers(min_value=-120, max_value=120),
)
def test_a_code_matches_within_one_step_and_never_beyond(
    secret: bytes, seconds: int, drift: int
) -> None:
    # given a code shown at one moment and checked at another
    shown_at = dt.datetime.fromtimestamp(seconds, dt.UTC)
    checked_at = shown_at + dt.timedelta(seconds=drift)
    step = cardcode.step_at(shown_at)
    digits = cardcode.otp(secret, step)
    # when the server looks for its step
    found = cardcode.matching_step(secret, digits, checked_at)
    # then it finds it exactly when the steps differ by at most one; any other step it
    # finds has the same digits by coincidence (1 in a million), never a wrong "no"
    distance = abs(cardcode.step_at(checked_at) - step)
    if distance <= cardcode.WINDOW:
        assert found is not None and found >= step
        assert cardcode.otp(secret, found) == digits
    else:
        assert found is None or cardcode.otp(secret, found) == digits


@given(secret=st.binary(min_size=16, max_size=64), step=st.integers(min_value=2, max_value=10**9))
def test_codes_older_than_one_used_are_refused(secret: bytes, step: int) -> None:
    # given a code of an earlier step than one already used at a till
    at = dt.datetime.fromtimestamp(step * cardcode.STEP_SECONDS, dt.UTC)
    old = cardcode.otp(secret, step - 1)
    # when it is checked with the used step as the lower bound
    found = cardcode.matching_step(secret, old, at, not_before=step)
    # then it is refused (unless a later step happens to have the same digits)
    assert found is None or (found >= step and cardcode.otp(secret, found) == old)


# ---------------------------------------------------------------------------- the till


def _device(db: Database, device_id: uuid.UUID) -> tuple[str, bytes]:
    with db.session() as s:
        device = s.get(MemberDevice, device_id)
        assert device is not None
        return device.card_no, base64.urlsafe_b64decode(device.card_secret)


@pytest.fixture
def signed(client: TestClient, code_file: Path, make_member: MemberFactory) -> SignedIn:
    make_member()
    return sign_in_by_code(client, code_file)


def test_the_device_gets_its_card_parameters(
    client: TestClient, signed: SignedIn, db: Database
) -> None:
    # given a signed-in phone
    device_id = signed.device_id
    card_no, secret = _device(db, device_id)
    # when it asks for its card
    body = client.get("/api/v1/app/card").json()
    # then it gets the device number, the secret and the clock to compute codes offline
    assert body["card"] == {
        "device": card_no,
        "secret": base64.urlsafe_b64encode(secret).decode(),
        "step_seconds": 30,
        "digits": 6,
        "algorithm": "HMAC-SHA-256",
    }
    assert abs(dt.datetime.fromisoformat(body["server_time"]) - now()) < dt.timedelta(seconds=5)
    assert len(body["card_number"]) == 13


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-30, True), (0, True), (30, True), (-61, False), (61, False)]
)
def test_codes_are_accepted_one_step_either_side(
    signed: SignedIn, db: Database, offset: int, accepted: bool
) -> None:
    # given a code computed on the phone whose clock is off by some seconds
    card_no, secret = _device(db, signed.device_id)
    at = dt.datetime.fromtimestamp(cardcode.step_at(now()) * 30 + 15, dt.UTC)
    code = cardcode.card_code(card_no, secret, at + dt.timedelta(seconds=offset))
    # when the till's server checks it
    with db.session() as s:
        found = service.resolve_card_code(s, code, at)
    # then only codes within one step resolve, to the member
    assert (found == signed.member_id) is accepted
    assert (found is None) is not accepted


def test_a_screenshot_of_an_older_code_is_refused_once_a_newer_one_was_used(
    signed: SignedIn, db: Database
) -> None:
    # given two consecutive codes of a phone
    card_no, secret = _device(db, signed.device_id)
    at = dt.datetime.fromtimestamp(cardcode.step_at(now()) * 30 + 10, dt.UTC)
    older = cardcode.card_code(card_no, secret, at - dt.timedelta(seconds=30))
    newer = cardcode.card_code(card_no, secret, at)
    # when the newer one is used at a till
    with db.session() as s:
        assert service.resolve_card_code(s, newer, at) == signed.member_id
        s.commit()
    # then it can be used again (calculate, then confirm), but the older one no longer
    with db.session() as s:
        assert service.resolve_card_code(s, newer, at) == signed.member_id
        assert service.resolve_card_code(s, older, at) is None


def test_unknown_devices_and_wrong_digits_do_not_resolve(signed: SignedIn, db: Database) -> None:
    card_no, secret = _device(db, signed.device_id)
    at = now()
    right = cardcode.card_code(card_no, secret, at)
    wrong = right[:-6] + f"{(int(right[-6:]) + 1) % 10**6:06d}"
    other_device = ("9" if card_no[0] != "9" else "8") + right[1:]
    with db.session() as s:
        assert service.resolve_card_code(s, wrong, at) is None
        assert service.resolve_card_code(s, other_device, at) is None
        assert service.resolve_card_code(s, "not a code", at) is None


def test_the_till_accepts_the_code_as_qr(
    client: TestClient, signed: SignedIn, db: Database, auth: KeyFactory
) -> None:
    # given a member signed in on a phone, with the code the phone shows now
    card_no, secret = _device(db, signed.device_id)
    code = cardcode.card_code(card_no, secret, now())
    cashier = auth("cashier")
    receipt = {
        "external_id": "R-QR-1",
        "member": {"qr": code},
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": now().isoformat(),
        "lines": [{"sku": "MILK", "quantity": "2", "unit_price": "89.90"}],
    }
    # when the till confirms a purchase naming the member by that code
    r = client.post("/api/v1/purchases", json=receipt, headers=cashier)
    # then it is the member's purchase and they earn 5 %
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == str(signed.member_id)
    assert r.json()["earned"][0]["amount"] == "8.99"
    assert Decimal(client.get("/api/v1/app/me").json()["balances"][0]["available"]) == Decimal(
        "8.99"
    )


def test_a_wrong_code_at_the_till_is_member_not_found(
    client: TestClient, signed: SignedIn, auth: KeyFactory
) -> None:
    # when the till names the member with a code no phone shows
    r = client.post(
        "/api/v1/purchases/calculate",
        json={
            "external_id": "R-QR-2",
            "member": {"qr": "0000000000000000"},
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [{"sku": "MILK", "quantity": "1", "unit_price": "10.00"}],
        },
        headers=auth("cashier"),
    )
    # then it is 404 member_not_found
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"


def test_a_revoked_or_expired_device_shows_no_valid_code(signed: SignedIn, db: Database) -> None:
    card_no, secret = _device(db, signed.device_id)
    with db.session() as s:
        s.execute(update(MemberDevice).values(expires_at=now() - dt.timedelta(seconds=1)))
        s.commit()
    with db.session() as s:
        assert (
            service.resolve_card_code(s, cardcode.card_code(card_no, secret, now()), now()) is None
        )
