"""Balances, history, adjustments and transfers over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.ledger.models import Entry
from tests.conftest import TEST_PROGRAM, KeyFactory

pytestmark = pytest.mark.usefixtures("program")


def member(client: TestClient, h: dict[str, str], phone: str) -> str:
    r = client.post("/api/v1/members", json={"phone": phone}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_balances_of_a_new_member_are_zero(client: TestClient, admin: dict[str, str]) -> None:
    m = member(client, admin, "+79160000001")
    r = client.get(f"/api/v1/members/{m}/balances", headers=admin)
    assert r.status_code == 200
    assert r.json() == {
        "balances": [
            {"currency": "BONUS", "available": "0.00", "pending": "0.00", "expiring_next": None},
            {"currency": "STAMP", "available": "0", "pending": "0", "expiring_next": None},
        ]
    }


def test_adjustment_moves_points_and_is_audited(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    manager = auth("manager")
    m = member(client, manager, "+79160000001")
    h = {**manager, "Idempotency-Key": "adj-1"}
    body = {"currency": "BONUS", "amount": "150.50", "reason": "goodwill after a complaint"}
    r = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=h)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["kind"], entry["currency"], entry["amount"]) == ("adjust", "BONUS", "150.50")
    again = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=h)
    assert again.json() == entry
    minus = client.post(
        f"/api/v1/members/{m}/adjustments",
        headers=manager,
        json={"currency": "BONUS", "amount": "-0.50", "reason": "typo fix"},
    )
    assert minus.status_code == 201
    bal = client.get(f"/api/v1/members/{m}/balances", headers=manager).json()["balances"][0]
    assert bal["available"] == "150.00"
    assert bal["expiring_next"]["amount"] == "150.00"  # the debit drew from that one lot
    history = client.get(f"/api/v1/members/{m}/ledger", headers=manager).json()
    assert [(i["kind"], i["amount"], i["description"]) for i in history["items"]] == [
        ("adjust", "-0.50", "typo fix"),
        ("adjust", "150.50", "goodwill after a complaint"),
    ]
    with db.session() as s:
        audit = list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("ledger.%"))
                .order_by(AuditEntry.occurred_at)
            )
        )
    # (the programme applied by the fixture is audited too, as program.apply)
    assert [a.action for a in audit] == ["ledger.adjust", "ledger.adjust"]
    assert audit[0].actor.startswith("api_key:")
    assert audit[0].before is not None and audit[0].before["available"] == "0.00"
    assert audit[0].after is not None and audit[0].after["available"] == "150.50"
    assert audit[0].details is not None and audit[0].details["reason"] == body["reason"]


@pytest.mark.parametrize(
    "body,code,field",
    [
        (
            {"currency": "BONUS", "amount": "-1.00", "reason": "take more than held"},
            "insufficient_balance",
            "amount",
        ),
        (
            {"currency": "BONUS", "amount": "1.001", "reason": "too fine"},
            "validation_error",
            "amount",
        ),
        (
            {"currency": "NOPE", "amount": "1", "reason": "unknown"},
            "currency_not_found",
            "currency",
        ),
        ({"currency": "BONUS", "amount": "0", "reason": "nothing"}, "validation_error", "amount"),
        ({"currency": "BONUS", "amount": "1"}, "validation_error", "reason"),
        ({"currency": "BONUS", "amount": 1.5, "reason": "a float"}, None, None),
    ],
)
def test_bad_adjustments(
    client: TestClient,
    admin: dict[str, str],
    body: dict[str, object],
    code: str | None,
    field: str | None,
) -> None:
    m = member(client, admin, "+79160000001")
    r = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=admin)
    if code is None:
        # a JSON number is accepted only because it is exact; the contract sends strings
        assert r.status_code == 201
        return
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(f"/api/v1/members/{m}/ledger", headers=admin).json()["items"] == []


def test_roles(client: TestClient, auth: KeyFactory) -> None:
    admin = auth("admin")
    m = member(client, admin, "+79160000001")
    body = {"currency": "BONUS", "amount": "1", "reason": "role test"}
    for role in ("analyst", "cashier"):
        r = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=auth(role))
        assert r.status_code == 403
    assert client.get(f"/api/v1/members/{m}/balances", headers=auth("analyst")).status_code == 200
    assert (
        client.get(f"/api/v1/members/{uuid.uuid4()}/balances", headers=admin).json()["code"]
        == "member_not_found"
    )


def test_history_pages_with_a_cursor(client: TestClient, admin: dict[str, str]) -> None:
    m = member(client, admin, "+79160000001")
    for i in range(5):
        client.post(
            f"/api/v1/members/{m}/adjustments",
            headers=admin,
            json={"currency": "BONUS", "amount": f"{i + 1}", "reason": f"grant {i}"},
        )
    seen = []
    url = f"/api/v1/members/{m}/ledger?limit=2"
    while url:
        page = client.get(url, headers=admin).json()
        seen += [i["amount"] for i in page["items"]]
        url = (
            f"/api/v1/members/{m}/ledger?limit=2&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    assert seen == ["5.00", "4.00", "3.00", "2.00", "1.00"]
    assert (
        client.get(f"/api/v1/members/{m}/ledger?currency=STAMP", headers=admin).json()["items"]
        == []
    )


def test_as_of_needs_an_offset_and_answers_the_future(
    client: TestClient, admin: dict[str, str]
) -> None:
    m = member(client, admin, "+79160000001")
    client.post(
        f"/api/v1/members/{m}/adjustments",
        headers=admin,
        json={"currency": "BONUS", "amount": "10", "reason": "grant"},
    )
    naive = client.get(f"/api/v1/members/{m}/balances?as_of=2030-01-01T00:00:00", headers=admin)
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "as_of"
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=800)).isoformat()
    r = client.get(f"/api/v1/members/{m}/balances", params={"as_of": future}, headers=admin)
    assert r.json()["balances"][0]["available"] == "0.00"  # expired by then (365 days)


def test_transfers(client: TestClient, admin: dict[str, str]) -> None:
    a = member(client, admin, "+79160000001")
    member(client, admin, "+79160000002")
    client.post(
        f"/api/v1/members/{a}/adjustments",
        headers=admin,
        json={"currency": "BONUS", "amount": "5000", "reason": "grant"},
    )
    url = f"/api/v1/members/{a}/transfers"
    ok = client.post(
        url,
        headers=admin,
        json={"to": {"phone": "89160000002"}, "currency": "BONUS", "amount": "1000"},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["kind"] == "transfer"
    too_big = client.post(
        url,
        headers=admin,
        json={"to": {"phone": "+79160000002"}, "currency": "BONUS", "amount": "1000.01"},
    )
    assert too_big.json()["code"] == "transfer_limit_exceeded"
    for _ in range(2):
        assert (
            client.post(
                url,
                headers=admin,
                json={"to": {"phone": "+79160000002"}, "currency": "BONUS", "amount": "1000"},
            ).status_code
            == 201
        )
    daily = client.post(
        url,
        headers=admin,
        json={"to": {"phone": "+79160000002"}, "currency": "BONUS", "amount": "0.01"},
    )
    assert daily.status_code == 422 and daily.json()["code"] == "transfer_limit_exceeded"
    stamp = client.post(
        url,
        headers=admin,
        json={"to": {"phone": "+79160000002"}, "currency": "STAMP", "amount": "1"},
    )
    assert stamp.json()["code"] == "transfers_disabled"
    nobody = client.post(
        url,
        headers=admin,
        json={"to": {"phone": "+79169999999"}, "currency": "BONUS", "amount": "1"},
    )
    assert nobody.status_code == 404 and nobody.json()["code"] == "member_not_found"
    self_ = client.post(
        url, headers=admin, json={"to": {"id": a}, "currency": "BONUS", "amount": "1"}
    )
    assert self_.status_code == 422
    bal = client.get(f"/api/v1/members/{a}/balances", headers=admin).json()["balances"][0]
    assert bal["available"] == "2000.00"


def test_the_programme_switch_refuses_a_transfer_of_a_transferable_currency(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    # given a member with points of BONUS (a transferable currency)
    a = member(client, admin, "+79160000001")
    b = member(client, admin, "+79160000002")
    client.post(
        f"/api/v1/members/{a}/adjustments",
        headers=admin,
        json={"currency": "BONUS", "amount": "500", "reason": "grant"},
    )
    # when the programme turns transfers off as a whole
    off = TEST_PROGRAM.replace(
        'transfers: {enabled: true, max_amount: "1000", daily_limit: "3000"}',
        "transfers: {enabled: false}",
    )
    assert off != TEST_PROGRAM
    r = client.put("/api/v1/program", content=off.encode(), headers=admin)
    assert r.status_code == 200, r.text
    # then a transfer of BONUS is refused, and nothing moved
    r = client.post(
        f"/api/v1/members/{a}/transfers",
        headers=admin,
        json={"to": {"id": b}, "currency": "BONUS", "amount": "100"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "transfers_disabled")
    for m, available in ((a, "500.00"), (b, "0.00")):
        bal = client.get(f"/api/v1/members/{m}/balances", headers=admin).json()["balances"][0]
        assert (bal["currency"], bal["available"]) == ("BONUS", available)
    with db.session() as s:
        assert s.scalars(select(Entry.id).where(Entry.kind == "transfer")).all() == []


def test_an_adjustment_with_more_digits_than_a_ledger_amount_is_a_422(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a member; when an adjustment of 10^13 points (14 digits) is asked for
    m = member(client, admin, "+79160000001")
    body = {"currency": "BONUS", "amount": "10000000000000", "reason": "too large"}
    r = client.post(f"/api/v1/members/{m}/adjustments", json=body, headers=admin)
    # then it is refused naming the amount, and nothing moved
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    assert [e["field"] for e in r.json()["errors"]] == ["amount"]
    assert client.get(f"/api/v1/members/{m}/ledger", headers=admin).json()["items"] == []


def test_a_wallet_never_holds_more_than_a_ledger_amount(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a member whose wallet holds the most a single adjustment may give
    m = member(client, admin, "+79160000001")
    top = {"currency": "BONUS", "amount": "9999999999999.99", "reason": "as much as it takes"}
    assert (
        client.post(f"/api/v1/members/{m}/adjustments", json=top, headers=admin).status_code == 201
    )
    # when one more cent is adjusted in (regression: it was accepted, and ninety-odd such
    # adjustments overflowed the wallet's BIGINT: a 500 on PostgreSQL, a float on SQLite)
    cent = {"currency": "BONUS", "amount": "0.01", "reason": "one cent more"}
    r = client.post(f"/api/v1/members/{m}/adjustments", json=cent, headers=admin)
    # then it is a 422 naming the amount and the room left, and nothing moved
    assert r.status_code == 422, r.text
    problem = r.json()
    assert (problem["code"], problem["room"]) == ("balance_limit_exceeded", "0.00")
    assert [e["field"] for e in problem["errors"]] == ["amount"]
    balances = client.get(f"/api/v1/members/{m}/balances", headers=admin).json()["balances"]
    assert balances[0]["available"] == "9999999999999.99"
    assert len(client.get(f"/api/v1/members/{m}/ledger", headers=admin).json()["items"]) == 1
    # and a receipt whose points would not fit is refused the same way, recording nothing
    card = client.get(f"/api/v1/members/{m}", headers=admin).json()["card_number"]
    receipt = {
        "external_id": "R-FULL",
        "member": {"card": card},
        "store": "msk-01",
        "occurred_at": "2026-03-01T10:00:00+03:00",
        "lines": [{"sku": "A", "quantity": "1", "unit_price": "100.00"}],
    }
    r = client.post("/api/v1/purchases", json=receipt, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "balance_limit_exceeded")
    listed = client.get("/api/v1/purchases", params={"member_id": m}, headers=admin)
    assert listed.json()["items"] == []
    # and a transfer into the full wallet too
    other = member(client, admin, "+79160000002")
    gift = {"currency": "BONUS", "amount": "5.00", "reason": "to give away"}
    assert (
        client.post(f"/api/v1/members/{other}/adjustments", json=gift, headers=admin).status_code
        == 201
    )
    r = client.post(
        f"/api/v1/members/{other}/transfers",
        json={"to": {"id": m}, "currency": "BONUS", "amount": "5.00"},
        headers=admin,
    )
    assert (r.status_code, r.json()["code"]) == (422, "balance_limit_exceeded")
