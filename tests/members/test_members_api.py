"""The members API as the contract describes it."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from kopilka.members.cards import is_valid_card

pytestmark = pytest.mark.usefixtures("program")


def test_create_member_normalises_phone_and_email(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a national-format phone and a mixed-case email
    body = {
        "phone": "8 (916) 123-45-67",
        "email": "Ivan.Petrov@Example.COM",
        "name": "Иван Петров",
        "birth_date": "1990-05-17",
        "external_id": "CRM-1",
        "consents": {"sms": True, "email": False},
    }
    # when the member is created
    r = client.post("/api/v1/members", json=body, headers=admin)
    # then the answer is 201 with normalised identifiers and a valid EAN-13 card
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["phone"] == "+79161234567"
    assert m["email"] == "ivan.petrov@example.com"
    assert m["name"] == "Иван Петров"
    assert m["birth_date"] == "1990-05-17"
    assert m["external_id"] == "CRM-1"
    assert m["status"] == "active"
    assert m["tier"] is None
    assert len(m["card_number"]) == 13 and m["card_number"].startswith("77")
    assert is_valid_card(m["card_number"])
    assert m["consents"] == {"email": False, "sms": True, "push": False}
    assert m["created_at"].endswith("Z") or "+" in m["created_at"]
    # and it can be read back by id
    got = client.get(f"/api/v1/members/{m['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == m


def test_without_key_is_401(client: TestClient) -> None:
    r = client.post("/api/v1/members", json={"phone": "+79161234567"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/members").status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer kop_000000000000_nope", "Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_wrong_key_is_401(client: TestClient, header: str) -> None:
    r = client.get("/api/v1/members", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_analyst_may_read_but_not_create(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    analyst = auth("analyst")
    assert client.get("/api/v1/members", headers=analyst).status_code == 200
    r = client.post("/api/v1/members", json={"phone": "+79161234567"}, headers=analyst)
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


def test_unknown_member_is_404(client: TestClient, admin: dict[str, str]) -> None:
    r = client.get(f"/api/v1/members/{uuid.uuid4()}", headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "member_not_found"


@pytest.mark.parametrize(
    "field,value,other",
    [
        ("phone", "+7 916 123-45-67", "89161234567"),
        ("email", "a@example.com", "A@EXAMPLE.com"),
        ("external_id", "CRM-7", "CRM-7"),
    ],
)
def test_duplicate_is_409_member_exists(
    client: TestClient, admin: dict[str, str], field: str, value: str, other: str
) -> None:
    # given a member with this phone/email/external id
    assert client.post("/api/v1/members", json={field: value}, headers=admin).status_code == 201
    # when another is created with the same one, written differently
    r = client.post("/api/v1/members", json={field: other}, headers=admin)
    # then 409 member_exists naming the field, and no second member exists
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "member_exists"
    assert [e["field"] for e in body["errors"]] == [field]
    listed = client.get("/api/v1/members", headers=admin).json()
    assert len(listed["items"]) == 1


@pytest.mark.parametrize(
    "body,field",
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "+7 916 123"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"email": "no-at-sign"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"birth_date": "1850-01-01"}, "birth_date"),
        ({"birth_date": "31.12.1990"}, "birth_date"),
        ({"consents": {"sms": "maybe"}}, "consents.sms"),
        ({"consents": {"fax": True}}, "consents.fax"),
        ({"phone": "+79161234567", "nickname": "x"}, "nickname"),
        ({"referral_code": "NOSUCH"}, "referral_code"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, object], field: str
) -> None:
    r = client.post("/api/v1/members", json=body, headers=admin)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "validation_error"
    assert field in [e["field"] for e in problem["errors"]]
    # and nothing was created
    assert client.get("/api/v1/members", headers=admin).json()["items"] == []


def test_malformed_json_is_422(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post(
        "/api/v1/members",
        content=b"{not json",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_idempotent_create(client: TestClient, admin: dict[str, str]) -> None:
    # given a create with an Idempotency-Key
    h = {**admin, "Idempotency-Key": "enrol-1"}
    first = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=h)
    assert first.status_code == 201
    # when it is retried with the same body
    again = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=h)
    # then the first answer comes back and nothing new exists
    assert again.status_code == 201
    assert again.json() == first.json()
    assert len(client.get("/api/v1/members", headers=admin).json()["items"]) == 1
    # and another body under the same key is refused
    other = client.post("/api/v1/members", json={"phone": "+79160000002"}, headers=h)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(client.get("/api/v1/members", headers=admin).json()["items"]) == 1


def test_referral_code_links_referrer(client: TestClient, admin: dict[str, str]) -> None:
    referrer = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    r = client.post(
        "/api/v1/members",
        json={"phone": "+79160000002", "referral_code": referrer["referral_code"].lower()},
        headers=admin,
    )
    assert r.status_code == 201


def test_find_by_each_identifier(client: TestClient, admin: dict[str, str]) -> None:
    m = client.post(
        "/api/v1/members",
        json={"phone": "+79161112233", "email": "f@example.com", "external_id": "E-1"},
        headers=admin,
    ).json()
    client.post("/api/v1/members", json={"phone": "+79161112244"}, headers=admin)
    for q in (
        "phone=8%20916%20111-22-33",
        "email=F@example.com",
        f"card={m['card_number']}",
        "external_id=E-1",
    ):
        r = client.get(f"/api/v1/members?{q}", headers=admin)
        assert r.status_code == 200, q
        assert [x["id"] for x in r.json()["items"]] == [m["id"]], q
    none = client.get("/api/v1/members?phone=%2B79990000000", headers=admin).json()
    assert none == {"items": [], "next_cursor": None}
    both = client.get("/api/v1/members?phone=%2B79161112233&email=f@example.com", headers=admin)
    assert both.status_code == 422
    assert {e["field"] for e in both.json()["errors"]} == {"phone", "email"}


def test_cursor_pagination_visits_every_member_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = [
        client.post("/api/v1/members", json={"phone": f"+7916000{i:04d}"}, headers=admin).json()[
            "id"
        ]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/members?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=admin).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    bad = client.get("/api/v1/members?cursor=%%%", headers=admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
