"""Fixtures of the member app's tests: members, the file channel for sign-in codes, and a
client signed in to the app the way a phone is (code by the file channel, then verify)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import create_member
from kopilka.security import ratelimit

PHONE = "+79161234567"
EMAIL = "olga@example.com"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    ratelimit.clear_cache()
    yield
    ratelimit.clear_cache()


@pytest.fixture
def code_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sign-in codes go to this file (the ``file`` channel), one line per code."""
    path = tmp_path / "codes.log"
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_CHANNEL", "file")
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_FILE", str(path))
    reset_settings_cache()
    yield path
    monkeypatch.undo()
    reset_settings_cache()


def last_code(path: Path, destination: str) -> str:
    lines = [ln.split("\t") for ln in path.read_text().splitlines()]
    codes = [parts[3] for parts in lines if parts[2] == destination]
    assert codes, f"no code was sent to {destination}"
    return codes[-1]


MemberFactory = Callable[..., uuid.UUID]


@pytest.fixture
def make_member(program: Database) -> MemberFactory:
    def make(
        phone: str | None = PHONE, email: str | None = EMAIL, name: str = "Ольга"
    ) -> uuid.UUID:
        with program.session() as s:
            member = create_member(s, MemberCreate(phone=phone, email=email, name=name), "RU")
            s.commit()
            return member.id

    return make


@dataclass
class SignedIn:
    member_id: uuid.UUID
    device_id: uuid.UUID
    csrf: str
    card: dict[str, object]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


def sign_in_by_code(client: TestClient, code_file: Path, phone: str = PHONE) -> SignedIn:
    asked = client.post("/api/v1/app/sign-in/code", json={"phone": phone})
    assert asked.status_code == 202, asked.text
    code = last_code(code_file, phone)
    done = client.post(
        "/api/v1/app/sign-in/verify",
        json={"challenge": asked.json()["challenge"], "code": code},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    return SignedIn(
        uuid.UUID(body["member_id"]),
        uuid.UUID(body["device"]["id"]),
        body["csrf_token"],
        body["card"],
    )
