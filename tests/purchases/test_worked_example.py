"""The contract's worked example, end to end over the API, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from tests.conftest import KeyFactory
from tests.purchases.conftest import Enrol, balance, receipt


def test_worked_example(
    client: TestClient, auth: KeyFactory, enrol: Enrol, program: Database
) -> None:
    till = auth("cashier", store="msk-01")
    admin = auth("admin")
    # given a member holding 500.00 BONUS
    m = enrol("500.00")
    body = receipt("R-1001", m["card_number"], redeem={"currency": "BONUS", "amount": "max"})
    # when the till calculates the receipt
    calc = client.post("/api/v1/purchases/calculate", json=body, headers=till)
    assert calc.status_code == 200, calc.text
    q = calc.json()
    # then: cap 0.5 × 629.80 = 314.90, split 89.90 / 225.00, earn 4.49 + 11.25
    assert q["subtotal"] == "629.80"
    assert q["discount"] == "0.00"
    assert q["redeemed"] == [{"currency": "BONUS", "amount": "314.90", "value": "314.90"}]
    assert q["total_due"] == "314.90"
    assert q["max_redeemable"] == {"currency": "BONUS", "amount": "314.90"}
    assert [e["amount"] for e in q["earned"]] == ["15.74"]
    assert [
        (
            ln["line_no"],
            ln["amount"],
            ln["redeemed"][0]["value"],
            ln["total_due"],
            ln["earned"][0]["amount"],
        )
        for ln in q["lines"]
    ] == [
        (1, "179.80", "89.90", "89.90", "4.49"),
        (2, "450.00", "225.00", "225.00", "11.25"),
    ]
    assert balance(client, admin, m["id"]) == "500.00"  # calculate wrote nothing
    # when it confirms with the quote
    conf = client.post("/api/v1/purchases", json={**body, "quote_id": q["quote_id"]}, headers=till)
    assert conf.status_code == 201, conf.text
    p = conf.json()
    assert p["status"] == "confirmed"
    assert (p["total_due"], p["redeemed"], p["earned"][0]["amount"]) == (
        "314.90",
        q["redeemed"],
        "15.74",
    )
    # then the balance is 500.00 − 314.90 + 15.74
    assert balance(client, admin, m["id"]) == "200.84"
    # and the same receipt again is the same purchase, changing nothing
    again = client.post("/api/v1/purchases", json=body, headers=till)
    assert again.status_code == 200
    assert again.json()["id"] == p["id"]
    assert balance(client, admin, m["id"]) == "200.84"
    # when both milks are returned in two returns
    r1 = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert r1.status_code == 201, r1.text
    r2 = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "RET-2", "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert r2.status_code == 201, r2.text
    # then 89.90 is refunded, 89.90 BONUS restored and 4.49 revoked, exactly
    a, b = r1.json(), r2.json()
    assert (a["refund_due"], b["refund_due"]) == ("44.95", "44.95")
    restored = [x["points_restored"][0]["amount"] for x in (a, b)]
    revoked = [x["points_revoked"][0]["amount"] for x in (a, b)]
    assert restored == ["44.95", "44.95"]
    assert sorted(revoked) == ["2.24", "2.25"]
    assert balance(client, admin, m["id"]) == "286.25"  # 200.84 + 89.90 − 4.49
    # and a third milk cannot be returned
    r3 = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "RET-3", "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert r3.status_code == 422
    assert r3.json()["code"] == "return_exceeds_purchase"
    assert r3.json()["errors"][0]["field"] == "lines[0].quantity"
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_returning_both_milks_at_once(client: TestClient, auth: KeyFactory, enrol: Enrol) -> None:
    till, admin = auth("cashier"), auth("admin")
    m = enrol("500.00")
    body = receipt("R-1002", m["card_number"], redeem={"currency": "BONUS", "amount": "max"})
    p = client.post("/api/v1/purchases", json=body, headers=till).json()
    r = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "RET", "lines": [{"line_no": 1, "quantity": "2"}]},
    )
    assert r.status_code == 201
    assert r.json()["refund_due"] == "89.90"
    assert r.json()["points_restored"] == [{"currency": "BONUS", "amount": "89.90"}]
    assert r.json()["points_revoked"] == [{"currency": "BONUS", "amount": "4.49"}]
    assert balance(client, admin, m["id"]) == "286.25"
