"""Nothing personal and no API key in the clear, in the database as stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.conftest import KeyFactory
from tests.security.rawdb import found_in, raw_dump

pytestmark = pytest.mark.usefixtures("program")

PEOPLE = [
    {
        "phone": "+79161234567",
        "email": "zinaida.kuznetsova@example.org",
        "name": "Зинаида Кузнецова",
        "birth_date": "1987-03-14",
        "consents": {"sms": True, "email": True},
        "consent_text_version": "2026-01",
    },
    {
        "phone": "+79037654321",
        "email": "quentin.applegate@example.net",
        "name": "Quentin Applegate",
        "birth_date": "1979-11-02",
    },
]


def test_raw_database_holds_no_phone_email_name_or_key(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given members enrolled (one with an Idempotency-Key), looked up, and keys issued
    admin = auth("admin")
    cashier = auth("cashier")
    for i, person in enumerate(PEOPLE):
        headers = {**cashier, "Idempotency-Key": f"enrol-{i}"}
        r = client.post("/api/v1/members", json=person, headers=headers)
        assert r.status_code == 201, r.text
        again = client.post("/api/v1/members", json=person, headers=headers)
        assert again.json() == r.json()
        found = client.get(f"/api/v1/members?phone={person['phone']}", headers=admin)
        assert found.json()["items"][0]["email"] == person["email"]
    issued = client.post(
        "/api/v1/apikeys",
        json={"name": "shop", "role": "manager"},
        headers={**admin, "Idempotency-Key": "k-1"},
    ).json()["key"]
    rotated = client.post(
        f"/api/v1/apikeys/{client.get('/api/v1/apikeys', headers=admin).json()['items'][-1]['id']}"
        "/rotate",
        headers={**admin, "Idempotency-Key": "k-2"},
    ).json()["key"]
    keys = [admin["Authorization"][7:], cashier["Authorization"][7:], issued, rotated]
    # when the database is read raw
    dump = raw_dump(db)
    # then none of it is there in the clear
    secrets = [k.split("_", 2)[2] for k in keys]
    assert found_in(dump, keys + secrets) == []
    personal = [p[f] for p in PEOPLE for f in ("phone", "email", "name")]
    personal += ["79161234567", "Кузнецова", "Applegate", "zinaida.kuznetsova"]
    assert found_in(dump, personal) == []
    # while the same run does find what is stored in the clear (the check can fail)
    assert found_in(dump, ["2026-01", "enrol-0"]) == ["2026-01", "enrol-0"]
