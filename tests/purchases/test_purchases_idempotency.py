"""Purchases retried and referenced: ``Idempotency-Key`` on every call that moves points,
returns retried by ``external_id``, debts left by a return and repaid by later earnings,
member references, and pending points."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from kopilka.purchases.models import Purchase, PurchaseReturn
from tests.conftest import TEST_PROGRAM, KeyFactory
from tests.purchases.conftest import Enrol, balance, receipt

MOSCOW = dt.timezone(dt.timedelta(hours=3))  # Europe/Moscow, the test programme's zone


@pytest.fixture
def till(auth: KeyFactory) -> dict[str, str]:
    return auth("cashier", store="msk-01")


def _state(db: Database) -> dict[str, int]:
    """How many rows each kind of change has written: a retry must leave them all."""
    with db.session() as s:
        return {
            t.__name__: s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Purchase, PurchaseReturn, Entry, OutboxEvent)
        }


def _post(
    client: TestClient, url: str, h: dict[str, str], key: str, body: Any = None
) -> tuple[int, Any]:
    r = client.post(url, json=body, headers={**h, "Idempotency-Key": key})
    return r.status_code, r.json()


# ---------------------------------------------------------------------- Idempotency-Key


def test_confirm_with_a_key_twice_answers_the_same_and_moves_nothing(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given a member with 100.00 and a receipt confirmed with a key, redeeming 10.00
    m = enrol("100.00")
    body = receipt("I-1", m["card_number"], redeem={"currency": "BONUS", "amount": "10"})
    first = _post(client, "/api/v1/purchases", till, "till-7:0001", body)
    assert first[0] == 201, first[1]
    after_first = (_state(program), balance(client, till, m["id"]))
    # when the till sends it again with the same key
    again = _post(client, "/api/v1/purchases", till, "till-7:0001", body)
    # then the first answer comes back, and nothing moved
    assert again == first
    assert (_state(program), balance(client, till, m["id"])) == after_first
    # 100 − 10 + 5 % of what was paid: milk 176.95 → 8.84, coffee 442.85 → 22.14
    assert after_first[1] == "120.98"
    # when the same key comes with another body
    other = {**body, "redeem": {"currency": "BONUS", "amount": "20"}}
    status, problem = _post(client, "/api/v1/purchases", till, "till-7:0001", other)
    # then 422 idempotency_key_reused, and still nothing moved
    assert (status, problem["code"]) == (422, "idempotency_key_reused")
    assert (_state(program), balance(client, till, m["id"])) == after_first
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_commit_with_a_key_twice_answers_the_same_and_moves_nothing(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given a hold of 300.00 of a member's 400.00, committed with a key
    m = enrol("400.00")
    hold = receipt("I-2", m["card_number"], redeem={"currency": "BONUS", "amount": "300"})
    held = client.post("/api/v1/purchases", json={**hold, "hold": True}, headers=till).json()
    url = f"/api/v1/purchases/{held['id']}/commit"
    first = _post(client, url, till, "commit-1", {"receipt_number": "FN-1"})
    assert first[0] == 200 and first[1]["status"] == "confirmed", first[1]
    after_first = (_state(program), balance(client, till, m["id"]))
    assert after_first[1] == "116.48"  # 100 left + 16.48 earned at commit
    # when the commit is retried with the same key and body
    again = _post(client, url, till, "commit-1", {"receipt_number": "FN-1"})
    # then the same answer, nothing earned twice
    assert again == first
    assert (_state(program), balance(client, till, m["id"])) == after_first
    # when the same key comes with another receipt number
    status, problem = _post(client, url, till, "commit-1", {"receipt_number": "FN-2"})
    # then 422 idempotency_key_reused; the purchase keeps its first receipt number
    assert (status, problem["code"]) == (422, "idempotency_key_reused")
    assert client.get(f"/api/v1/purchases/{held['id']}", headers=till).json()["receipt_number"] == (
        "FN-1"
    )
    assert (_state(program), balance(client, till, m["id"])) == after_first


def test_cancel_with_a_key_twice_answers_the_same_and_moves_nothing(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given two purchases of a member, the first cancelled with a key
    m = enrol("500.00")
    p1, p2 = (
        client.post(
            "/api/v1/purchases",
            json=receipt(ext, m["card_number"], redeem={"currency": "BONUS", "amount": "50"}),
            headers=till,
        ).json()
        for ext in ("I-3", "I-4")
    )
    first = _post(client, f"/api/v1/purchases/{p1['id']}/cancel", till, "cancel-1")
    assert first[0] == 200 and first[1]["status"] == "cancelled", first[1]
    after_first = (_state(program), balance(client, till, m["id"]))
    # when the cancel is retried with the same key
    again = _post(client, f"/api/v1/purchases/{p1['id']}/cancel", till, "cancel-1")
    # then the same answer, nothing given back twice
    assert again == first
    assert (_state(program), balance(client, till, m["id"])) == after_first
    # when the same key is sent to cancel the other purchase (another request)
    status, problem = _post(client, f"/api/v1/purchases/{p2['id']}/cancel", till, "cancel-1")
    # then 422 idempotency_key_reused, and the other purchase stands
    assert (status, problem["code"]) == (422, "idempotency_key_reused")
    got = client.get(f"/api/v1/purchases/{p2['id']}", headers=till).json()
    assert got["status"] == "confirmed"
    assert (_state(program), balance(client, till, m["id"])) == after_first


def test_a_return_with_a_key_twice_answers_the_same_and_moves_nothing(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given the worked example's purchase (500.00 held, max redeemed) and a return with a key
    m = enrol("500.00")
    p = client.post(
        "/api/v1/purchases",
        json=receipt("I-5", m["card_number"], redeem={"currency": "BONUS", "amount": "max"}),
        headers=till,
    ).json()
    url = f"/api/v1/purchases/{p['id']}/returns"
    body = {"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "2"}]}
    first = _post(client, url, till, "return-1", body)
    assert first[0] == 201, first[1]
    assert (first[1]["refund_due"], first[1]["points_restored"], first[1]["points_revoked"]) == (
        "89.90",
        [{"currency": "BONUS", "amount": "89.90"}],
        [{"currency": "BONUS", "amount": "4.49"}],
    )
    after_first = (_state(program), balance(client, till, m["id"]))
    assert after_first[1] == "286.25"  # 200.84 + 89.90 − 4.49
    # when it is retried with the same key
    again = _post(client, url, till, "return-1", body)
    # then the same answer (201, the same return), nothing restored twice
    assert again == first
    assert (_state(program), balance(client, till, m["id"])) == after_first
    # when the same key comes with another return
    other = {"external_id": "RET-2", "lines": [{"line_no": 2, "quantity": "1"}]}
    status, problem = _post(client, url, till, "return-1", other)
    # then 422 idempotency_key_reused, and nothing was returned
    assert (status, problem["code"]) == (422, "idempotency_key_reused")
    assert (_state(program), balance(client, till, m["id"])) == after_first


# ---------------------------------------------------------------------- returns by external_id


def test_a_return_sent_twice_by_external_id_is_one_return(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    # given a purchase and a return of one milk, RET-1
    m = enrol("0")
    p = client.post("/api/v1/purchases", json=receipt("X-1", m["card_number"]), headers=till)
    url = f"/api/v1/purchases/{p.json()['id']}/returns"
    body = {"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]}
    first = client.post(url, json=body, headers=till)
    assert first.status_code == 201, first.text
    after_first = (_state(program), balance(client, till, m["id"]))
    # when the till sends RET-1 again with the same content (no Idempotency-Key)
    again = client.post(url, json=body, headers=till)
    # then it answers the same return (200), and nothing is returned twice
    assert again.status_code == 200
    assert again.json() == first.json()
    assert (_state(program), balance(client, till, m["id"])) == after_first
    # when RET-1 comes with other content
    other = {"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "2"}]}
    r = client.post(url, json=other, headers=till)
    # then 409 duplicate_external_id naming the field, and nothing moved
    assert (r.status_code, r.json()["code"]) == (409, "duplicate_external_id")
    assert [e["field"] for e in r.json()["errors"]] == ["external_id"]
    assert (_state(program), balance(client, till, m["id"])) == after_first


# ---------------------------------------------------------------------- debts


def test_a_return_after_spending_leaves_a_debt_that_later_earnings_repay(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    def bal() -> dict[str, Any]:
        r = client.get(f"/api/v1/members/{m['id']}/balances", headers=till)
        got: dict[str, Any] = r.json()["balances"][0]
        return got

    # given a member who earned 31.49 on a receipt (5 % of 179.80 and of 450.00)
    m = enrol("0")
    p1 = client.post("/api/v1/purchases", json=receipt("D-1", m["card_number"]), headers=till)
    assert [e["amount"] for e in p1.json()["earned"]] == ["31.49"]
    # and spent them all on a second receipt (63.00: 31.49 redeemed, 1.57 earned on 31.51)
    gum = [{"sku": "GUM", "quantity": "1", "unit_price": "63.00"}]
    p2 = client.post(
        "/api/v1/purchases",
        json=receipt(
            "D-2", m["card_number"], lines=gum, redeem={"currency": "BONUS", "amount": "max"}
        ),
        headers=till,
    ).json()
    assert (p2["redeemed"][0]["amount"], p2["earned"][0]["amount"]) == ("31.49", "1.57")
    assert bal()["available"] == "1.57"
    # when the goods of the first receipt are returned
    r = client.post(
        f"/api/v1/purchases/{p1.json()['id']}/returns",
        json={
            "external_id": "RET-D",
            "lines": [{"line_no": 1, "quantity": "2"}, {"line_no": 2, "quantity": "1"}],
        },
        headers=till,
    )
    assert r.status_code == 201, r.text
    assert r.json()["points_revoked"] == [{"currency": "BONUS", "amount": "31.49"}]
    # then the 31.49 revoked take the 1.57 left, and the rest is a debt shown as negative
    assert (bal()["available"], bal()["pending"]) == ("-29.92", "0.00")
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
    # and the member cannot redeem while in debt
    r = client.post(
        "/api/v1/purchases",
        json=receipt("D-3", m["card_number"], redeem={"currency": "BONUS", "amount": "1"}),
        headers=till,
    )
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_balance")
    # when a later purchase earns 31.49
    p4 = client.post("/api/v1/purchases", json=receipt("D-4", m["card_number"]), headers=till)
    assert [e["amount"] for e in p4.json()["earned"]] == ["31.49"]
    # then its earnings repay the debt first: 31.49 − 29.92 = 1.57 left
    assert (bal()["available"], bal()["pending"]) == ("1.57", "0.00")
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


# ---------------------------------------------------------------------- member references


def test_purchases_find_the_member_by_external_id_and_phone(
    client: TestClient, till: dict[str, str], admin: dict[str, str], program: Database
) -> None:
    # given a member enrolled with a phone and a CRM id
    r = client.post(
        "/api/v1/members", json={"phone": "+79161234567", "external_id": "crm-42"}, headers=admin
    )
    member_id = r.json()["id"]
    # when receipts name them by external id, and by phone in a national format
    for ext, ref in (
        ("M-1", {"external_id": "crm-42"}),
        ("M-2", {"phone": "8 (916) 123-45-67"}),
    ):
        p = client.post(
            "/api/v1/purchases", json={**receipt(ext, None), "member": ref}, headers=till
        )
        # then the purchase is the member's, and earns for them
        assert p.status_code == 201, p.text
        assert (p.json()["member_id"], p.json()["earned"][0]["amount"]) == (member_id, "31.49")
    assert balance(client, till, member_id) == "62.98"
    # when a receipt names nobody known, then 404 member_not_found and nothing is written
    before = _state(program)
    for ext, ref in (
        ("M-3", {"external_id": "crm-nobody"}),
        ("M-4", {"phone": "+79169999999"}),
    ):
        p = client.post(
            "/api/v1/purchases", json={**receipt(ext, None), "member": ref}, headers=till
        )
        assert (p.status_code, p.json()["code"]) == (404, "member_not_found")
    assert _state(program) == before


# ---------------------------------------------------------------------- pending points


def test_points_of_a_currency_with_pending_days_wait_14_days(
    client: TestClient, till: dict[str, str], admin: dict[str, str], enrol: Enrol
) -> None:
    # given a programme whose BONUS points become available 14 days after the purchase
    doc = yaml.safe_load(TEST_PROGRAM)
    bonus = next(c for c in doc["currencies"] if c["code"] == "BONUS")
    bonus["pending_days"] = 14
    r = client.put("/api/v1/program", content=yaml.safe_dump(doc).encode(), headers=admin)
    assert r.status_code == 200, r.text
    m = enrol("0")
    # when the member buys (an hour ago, a time given in Moscow time)
    bought = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
    occurred = bought.astimezone(MOSCOW)
    p = client.post(
        "/api/v1/purchases",
        json=receipt("P-1", m["card_number"], occurred_at=occurred.isoformat()),
        headers=till,
    )
    assert p.status_code == 201, p.text
    # then the points earned are available 14 days after the purchase, in Moscow time
    [earned] = p.json()["earned"]
    available_at = dt.datetime.fromisoformat(earned["available_at"])
    assert earned["amount"] == "31.49"
    assert available_at == occurred + dt.timedelta(days=14)
    assert available_at.utcoffset() == dt.timedelta(hours=3)
    # and until then they show as pending, not available
    b = client.get(f"/api/v1/members/{m['id']}/balances", headers=till).json()["balances"][0]
    assert (b["available"], b["pending"]) == ("0.00", "31.49")
    # and on that day they are available
    later = (available_at + dt.timedelta(seconds=1)).isoformat()
    b = client.get(
        f"/api/v1/members/{m['id']}/balances", params={"as_of": later}, headers=till
    ).json()["balances"][0]
    assert (b["available"], b["pending"]) == ("31.49", "0.00")
