"""No insecure direct object references: a scoped caller cannot act outside its scope."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyFactory
from tests.purchases.conftest import receipt

pytestmark = pytest.mark.usefixtures("program")


def test_a_cashier_cannot_reach_another_stores_purchases(
    client: TestClient, auth: KeyFactory
) -> None:
    # given a purchase (held) at msk-01 and a cashier of msk-02
    admin = auth("admin")
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    own_till = auth("cashier", store="msk-01")
    other_till = auth("cashier", store="msk-02")
    r = client.post("/api/v1/purchases", json=receipt("R-1", m["card_number"]), headers=own_till)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    # when the other store's cashier reads, returns or cancels it
    attempts = [
        client.get(f"/api/v1/purchases/{pid}", headers=other_till),
        client.post(
            f"/api/v1/purchases/{pid}/returns",
            json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
            headers=other_till,
        ),
        client.post(f"/api/v1/purchases/{pid}/cancel", headers=other_till),
    ]
    # then it is not found, as if it did not exist, and nothing changed
    assert [(a.status_code, a.json()["code"]) for a in attempts] == [
        (404, "purchase_not_found")
    ] * 3
    assert client.get(f"/api/v1/purchases/{pid}", headers=own_till).json()["status"] == (
        "confirmed"
    )
    # and its list holds its own store only, whatever it asks for
    listed = client.get("/api/v1/purchases?store=msk-01", headers=other_till).json()
    assert listed["items"] == []
    # and it cannot record a receipt for another store
    r = client.post("/api/v1/purchases", json=receipt("R-2", m["card_number"]), headers=other_till)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_a_partner_records_only_at_its_own_stores(client: TestClient, auth: KeyFactory) -> None:
    admin = auth("admin")
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    acme = auth("partner", partner="acme")
    elsewhere = client.post(
        "/api/v1/purchases", json=receipt("P-1", m["card_number"]), headers=acme
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "forbidden"
    own = client.post(
        "/api/v1/purchases",
        json={**receipt("P-2", m["card_number"]), "store": "p-store"},
        headers=acme,
    )
    assert own.status_code == 201, own.text


def test_a_cashier_cannot_manage_members_keys_or_the_audit(
    client: TestClient, auth: KeyFactory
) -> None:
    admin, till = auth("admin"), auth("cashier")
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    for method, url in (
        ("POST", f"/api/v1/members/{m['id']}/erase"),
        ("GET", f"/api/v1/members/{m['id']}/export"),
        ("PATCH", f"/api/v1/members/{m['id']}"),
        ("POST", f"/api/v1/members/{m['id']}/adjustments"),
        ("GET", "/api/v1/apikeys"),
        ("GET", "/api/v1/audit"),
    ):
        r = client.request(method, url, json={}, headers=till)
        assert r.status_code == 403, url
    assert client.get(f"/api/v1/members/{m['id']}", headers=admin).json()["status"] == "active"
