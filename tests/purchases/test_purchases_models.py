"""Every answer of the purchase endpoints matches the model it declares in the OpenAPI.

The purchase endpoints render the dicts the service builds (a till's hot path), which
FastAPI does not validate again; this walk through calculate, confirm, hold, commit,
cancel, returns and the reads holds them to their models instead (``extra="forbid"``: no
key the model does not name)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.purchases.schemas import (
    CalculationOut,
    CancelledOut,
    PointsOut,
    PurchaseOut,
    PurchasePage,
    ReturnOut,
)
from tests.conftest import KeyFactory
from tests.purchases.conftest import Enrol, receipt


def test_every_purchase_answer_matches_its_model(
    client: TestClient, auth: KeyFactory, enrol: Enrol
) -> None:
    # given a member with points, a till, and a receipt that redeems more than allowed
    till = auth("cashier", store="msk-01")
    card = enrol("500")["card_number"]
    body = receipt(
        "M-1", card, redeem={"currency": "BONUS", "amount": "10000"}, coupons=["NO-SUCH-CODE"]
    )

    # when the till calculates, confirms, holds, commits, cancels and returns
    calc = client.post("/api/v1/purchases/calculate", json=body, headers=till)
    fine = {**body, "redeem": {"currency": "BONUS", "amount": "max"}, "coupons": []}
    bought = client.post("/api/v1/purchases", json=fine, headers=till)
    again = client.post("/api/v1/purchases", json=fine, headers=till)
    held = client.post(
        "/api/v1/purchases", json={**fine, "external_id": "M-2", "hold": True}, headers=till
    )
    hid = held.json()["id"]
    committed = client.post(
        f"/api/v1/purchases/{hid}/commit", json={"receipt_number": "7"}, headers=till
    )
    held3 = client.post(
        "/api/v1/purchases", json={**fine, "external_id": "M-3", "hold": True}, headers=till
    )
    released = client.post(f"/api/v1/purchases/{held3.json()['id']}/cancel", headers=till)
    returned = client.post(
        f"/api/v1/purchases/{bought.json()['id']}/returns",
        json={"external_id": "RT-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=till,
    )
    cancelled = client.post(f"/api/v1/purchases/{hid}/cancel", headers=till)
    cancelled_again = client.post(f"/api/v1/purchases/{hid}/cancel", headers=till)
    one = client.get(f"/api/v1/purchases/{hid}", headers=till)
    page = client.get("/api/v1/purchases", headers=till)

    # then each answer is what its model says, with the fields each case fills
    assert [r.status_code for r in (calc, bought, again, held, committed, released)] == [
        200,
        201,
        200,
        201,
        200,
        200,
    ]
    assert [r.status_code for r in (returned, cancelled, cancelled_again, one, page)] == [
        201,
        200,
        200,
        200,
        200,
    ]
    c = CalculationOut.model_validate(calc.json())
    assert [w.code for w in c.warnings] == ["insufficient_balance", "redeem_limit_exceeded"]
    assert (c.max_redeemable, c.available) == (
        PointsOut(currency="BONUS", amount="314.90"),
        PointsOut(currency="BONUS", amount="500.00"),
    )
    assert [(x.code, x.status) for x in c.coupons] == [("NO-SUCH-CODE", "rejected")]
    for r in (bought, again, held, committed, one):
        PurchaseOut.model_validate(r.json())
    assert PurchaseOut.model_validate(committed.json()).receipt_number == "7"
    assert CancelledOut.model_validate(released.json()).refund_due is None
    assert "refund_due" not in released.json()
    assert CancelledOut.model_validate(cancelled.json()).status == "cancelled"
    assert "refund_due" in cancelled.json()
    assert "refund_due" not in cancelled_again.json()
    assert ReturnOut.model_validate(returned.json()).lines[0].line_no == 1
    assert len(PurchasePage.model_validate(page.json()).items) == 3
