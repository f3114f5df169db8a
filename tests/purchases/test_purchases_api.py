"""Purchases over HTTP: holds, cancels, errors, idempotency, quotes, anonymous receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from kopilka.purchases.models import Purchase
from tests.conftest import KeyFactory
from tests.purchases.conftest import Enrol, balance, receipt


@pytest.fixture
def till(auth: KeyFactory) -> dict[str, str]:
    return auth("cashier", store="msk-01")


def test_anonymous_receipt_is_recorded_without_points(
    client: TestClient, till: dict[str, str], program: Database
) -> None:
    r = client.post("/api/v1/purchases", json=receipt("A-1", None), headers=till)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["member_id"], p["earned"], p["total_due"], p["max_redeemable"]) == (
        None,
        [],
        "629.80",
        None,
    )
    with program.session() as s:
        assert s.scalar(select(func.count()).select_from(Purchase)) == 1
    bad = client.post(
        "/api/v1/purchases",
        headers=till,
        json=receipt("A-2", None, redeem={"currency": "BONUS", "amount": "1"}),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "redeem"


def test_unknown_store_and_foreign_store(
    client: TestClient, till: dict[str, str], enrol: Enrol
) -> None:
    r = client.post(
        "/api/v1/purchases",
        json={**receipt("X", None), "store": "nowhere"},
        headers=till,
    )
    assert r.status_code in (403, 422)
    m = enrol()
    body = {**receipt("X", m["card_number"]), "store": "msk-02"}
    assert client.post("/api/v1/purchases", json=body, headers=till).json()["code"] == "forbidden"


def test_unknown_store_for_admin(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    r = client.post(
        "/api/v1/purchases", json={**receipt("X", None), "store": "nowhere"}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["code"] == "store_not_found"
    assert r.json()["errors"][0]["field"] == "store"
    # and it says how to declare the store (issue 19: a new integrator did not know)
    assert r.json()["detail"] == (
        "no store 'nowhere' in the programme: declare it in the programme file's "
        "`stores:` section and apply the file (`kopilka program apply FILE`)"
    )


@pytest.mark.parametrize(
    "change,field",
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "A", "quantity": "0", "unit_price": "1.00"}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "A", "quantity": "1", "unit_price": "-1.00"}]}, "lines[0].unit_price"),
        ({"lines": [{"sku": "A", "quantity": "1", "unit_price": "1.001"}]}, "lines[0].unit_price"),
        ({"lines": [{"sku": "A", "quantity": "1", "unit_price": 1.1}]}, None),
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at"),
        ({"channel": "fax"}, "channel"),
        ({"member": {"card": "1", "phone": "+79160000000"}}, "member"),
        ({"redeem": {"currency": "BONUS", "amount": "lots"}}, "redeem.amount"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_receipts_name_the_field(
    client: TestClient,
    till: dict[str, str],
    enrol: Enrol,
    change: dict[str, object],
    field: str | None,
) -> None:
    m = enrol("100")
    body = {**receipt("B-1", m["card_number"]), **change}
    r = client.post("/api/v1/purchases", json=body, headers=till)
    if field is None:
        assert r.status_code == 201  # an exact JSON number is accepted
        return
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


HUGE = {"sku": "A", "quantity": "999999999.999", "unit_price": "9999999999999.99"}
BIG = {"sku": "A", "quantity": "1", "unit_price": "9999999999999.99"}


@pytest.mark.parametrize(
    ("lines", "field"),
    [([HUGE], "lines[0]"), ([BIG, BIG], "lines"), ([BIG, HUGE], "lines[1]")],
)
def test_amounts_beyond_what_can_be_stored_are_422_naming_the_line(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    lines: list[dict[str, str]],
    field: str,
) -> None:
    # Regression (issue 19, found by fuzzing): quantity × unit_price of 10^9 × 10^13 was
    # figured by calculate and answered 500 by confirm (the amount cannot be stored).
    # given a member's receipt whose line, or whose lines together, come to 10^13 or more
    m = enrol("100")
    body = receipt("HUGE-1", m["card_number"], lines=lines)
    for path in ("/api/v1/purchases/calculate", "/api/v1/purchases"):
        # when it is calculated or confirmed
        r = client.post(path, json=body, headers=admin)
        # then it is refused naming the line (or the lines), and nothing is recorded
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert client.get("/api/v1/purchases", headers=admin).json()["items"] == []


def test_weighed_goods_round_half_up(
    client: TestClient, till: dict[str, str], enrol: Enrol
) -> None:
    m = enrol()
    body = {
        **receipt("W-1", m["card_number"]),
        "lines": [{"sku": "CHEESE", "quantity": "0.347", "unit_price": "1299.00"}],
    }
    p = client.post("/api/v1/purchases", json=body, headers=till).json()
    assert p["lines"][0]["amount"] == "450.75"  # 450.753 → 450.75
    assert p["lines"][0]["quantity"] == "0.347"
    assert p["earned"][0]["amount"] == "22.53"  # 5 % of 450.75 = 22.5375, down


def test_redemption_limits(client: TestClient, till: dict[str, str], enrol: Enrol) -> None:
    m = enrol("100.00")
    too_much = receipt("L-1", m["card_number"], redeem={"currency": "BONUS", "amount": "100.01"})
    r = client.post("/api/v1/purchases", json=too_much, headers=till)
    assert r.status_code == 422 and r.json()["code"] == "insufficient_balance"
    calc = client.post("/api/v1/purchases/calculate", json=too_much, headers=till).json()
    assert [w["code"] for w in calc["warnings"]] == ["insufficient_balance"]
    assert calc["redeemed"][0]["amount"] == "100.00"
    rich = enrol("1000.00")
    over_cap = receipt("L-2", rich["card_number"], redeem={"currency": "BONUS", "amount": "315"})
    r = client.post("/api/v1/purchases", json=over_cap, headers=till)
    assert r.status_code == 422 and r.json()["code"] == "redeem_limit_exceeded"
    assert r.json()["max_redeemable"] == "314.90"
    calc = client.post("/api/v1/purchases/calculate", json=over_cap, headers=till).json()
    assert [w["code"] for w in calc["warnings"]] == ["redeem_limit_exceeded"]
    assert balance(client, till, m["id"]) == "100.00"


@pytest.mark.parametrize("zero", ["0", "0.00", 0], ids=["string", "cents", "number"])
def test_redeeming_zero_is_no_redemption(
    client: TestClient, till: dict[str, str], enrol: Enrol, zero: object
) -> None:
    # given a member holding 100.00 BONUS, one who never had a wallet, and a till that sends
    # "redeem" with 0 whenever the customer pays no points (issue 19: that was a 422)
    m = enrol("100.00")
    fresh = enrol()
    redeem = {"currency": "BONUS", "amount": zero}
    # when it calculates and confirms such a receipt
    calc = client.post(
        "/api/v1/purchases/calculate",
        json=receipt("Z-1", m["card_number"], redeem=redeem),
        headers=till,
    )
    confirmed = client.post(
        "/api/v1/purchases", json=receipt("Z-1", m["card_number"], redeem=redeem), headers=till
    )
    # then nothing is redeemed, the whole receipt is paid and earns 5 % (8.99 + 22.50)
    assert calc.status_code == 200, calc.text
    assert (calc.json()["redeemed"], calc.json()["total_due"], calc.json()["warnings"]) == (
        [],
        "629.80",
        [],
    )
    # and the till still learns how much it could have redeemed
    assert calc.json()["max_redeemable"] == {"currency": "BONUS", "amount": "100.00"}
    assert confirmed.status_code == 201, confirmed.text
    p = confirmed.json()
    assert (p["redeemed"], p["total_due"], [e["amount"] for e in p["earned"]]) == (
        [],
        "629.80",
        ["31.49"],
    )
    assert [ln["redeemed"] for ln in p["lines"]] == [[], []]
    assert balance(client, till, m["id"]) == "131.49"
    # and so for a member without a wallet and for an anonymous receipt
    r = client.post(
        "/api/v1/purchases",
        json=receipt("Z-2", fresh["card_number"], redeem=redeem),
        headers=till,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["redeemed"], r.json()["total_due"]) == ([], "629.80")
    assert balance(client, till, fresh["id"]) == "31.49"
    r = client.post("/api/v1/purchases", json=receipt("Z-3", None, redeem=redeem), headers=till)
    assert r.status_code == 201, r.text
    assert (r.json()["redeemed"], r.json()["earned"], r.json()["total_due"]) == (
        [],
        [],
        "629.80",
    )


def test_a_negative_redemption_names_the_field(
    client: TestClient, till: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("100.00")
    body = receipt("N-1", m["card_number"], redeem={"currency": "BONUS", "amount": "-1"})
    r = client.post("/api/v1/purchases", json=body, headers=till)
    assert r.status_code == 422, r.text
    assert [(e["field"], e["message"]) for e in r.json()["errors"]] == [
        ("redeem.amount", "must not be negative")
    ]
    assert balance(client, till, m["id"]) == "100.00"


def test_duplicate_external_id_with_other_content(
    client: TestClient, till: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("100")
    first = client.post("/api/v1/purchases", json=receipt("D-1", m["card_number"]), headers=till)
    assert first.status_code == 201
    other = receipt("D-1", m["card_number"], redeem={"currency": "BONUS", "amount": "10"})
    r = client.post("/api/v1/purchases", json=other, headers=till)
    assert r.status_code == 409 and r.json()["code"] == "duplicate_external_id"
    assert r.json()["purchase_id"] == first.json()["id"]
    assert (
        balance(client, till, m["id"]) == "131.49"
    )  # 100 + 5 % of 179.80 (8.99) + of 450.00 (22.50)


def test_quote_changed_when_balance_moved(
    client: TestClient, till: dict[str, str], admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("500.00")
    body = receipt("Q-1", m["card_number"], redeem={"currency": "BONUS", "amount": "max"})
    q = client.post("/api/v1/purchases/calculate", json=body, headers=till).json()
    # meanwhile the member spends elsewhere
    client.post(
        f"/api/v1/members/{m['id']}/adjustments",
        headers=admin,
        json={"currency": "BONUS", "amount": "-400", "reason": "spent elsewhere"},
    )
    r = client.post("/api/v1/purchases", json={**body, "quote_id": q["quote_id"]}, headers=till)
    assert r.status_code == 409 and r.json()["code"] == "quote_changed"
    assert r.json()["quote"]["redeemed"][0]["amount"] == "100.00"
    assert balance(client, till, m["id"]) == "100.00"
    ok = client.post(
        "/api/v1/purchases", json={**body, "quote_id": r.json()["quote"]["quote_id"]}, headers=till
    )
    assert ok.status_code == 201


def test_hold_reserves_then_commit_earns(
    client: TestClient, till: dict[str, str], enrol: Enrol
) -> None:
    m = enrol("400.00")
    body = receipt(
        "H-1", m["card_number"], redeem={"currency": "BONUS", "amount": "300"}, hold=True
    )
    h = client.post("/api/v1/purchases", json=body, headers=till)
    assert h.status_code == 201, h.text
    held = h.json()
    assert held["status"] == "held" and held["hold_expires_at"] is not None
    assert balance(client, till, m["id"]) == "100.00"  # reserved, nothing earned yet
    # nobody else can spend the reserved points
    other = receipt("H-2", m["card_number"], redeem={"currency": "BONUS", "amount": "101"})
    assert client.post("/api/v1/purchases", json=other, headers=till).json()["code"] == (
        "insufficient_balance"
    )
    c = client.post(
        f"/api/v1/purchases/{held['id']}/commit", json={"receipt_number": "FN-7"}, headers=till
    )
    assert c.status_code == 200, c.text
    assert (c.json()["status"], c.json()["receipt_number"]) == ("confirmed", "FN-7")
    # earning happens at commit, on the money paid (329.80 in all)
    earned = Decimal(c.json()["earned"][0]["amount"])
    assert earned == Decimal("16.48")  # 5 % of 94.15 → 4.70, of 235.65 → 11.78 (down)
    assert balance(client, till, m["id"]) == f"{Decimal('100.00') + earned:.2f}"
    again = client.post(f"/api/v1/purchases/{held['id']}/commit", headers=till)
    assert again.status_code == 200 and again.json()["status"] == "confirmed"
    assert balance(client, till, m["id"]) == f"{Decimal('100.00') + earned:.2f}"


def test_hold_cancel_releases_the_same_points(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    m = enrol("400.00")
    body = receipt(
        "H-3", m["card_number"], redeem={"currency": "BONUS", "amount": "300"}, hold=True
    )
    held = client.post("/api/v1/purchases", json=body, headers=till).json()
    c = client.post(f"/api/v1/purchases/{held['id']}/cancel", headers=till)
    assert c.status_code == 200 and c.json()["status"] == "released"
    assert balance(client, till, m["id"]) == "400.00"
    assert client.post(f"/api/v1/purchases/{held['id']}/cancel", headers=till).status_code == 200
    assert balance(client, till, m["id"]) == "400.00"
    r = client.post(f"/api/v1/purchases/{held['id']}/commit", headers=till)
    assert r.status_code == 409 and r.json()["code"] == "purchase_state_conflict"
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_expired_hold_is_released_by_the_job(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    from kopilka.purchases.holds import release_expired_holds

    m = enrol("400.00")
    held = client.post(
        "/api/v1/purchases",
        headers=till,
        json=receipt(
            "H-4", m["card_number"], redeem={"currency": "BONUS", "amount": "50"}, hold=True
        ),
    ).json()
    with program.session() as s:
        assert release_expired_holds(s, dt.datetime.now(dt.UTC)) == 0
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
        assert release_expired_holds(s, later) == 1
        s.commit()
        assert release_expired_holds(s, later) == 0
    assert balance(client, till, m["id"]) == "400.00"
    got = client.get(f"/api/v1/purchases/{held['id']}", headers=till).json()
    assert got["status"] == "released"


def test_cancel_after_partial_return_reverses_the_rest(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    m = enrol("500.00")
    body = receipt("C-1", m["card_number"], redeem={"currency": "BONUS", "amount": "max"})
    p = client.post("/api/v1/purchases", json=body, headers=till).json()
    r = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "R", "lines": [{"line_no": 2, "quantity": "1"}]},
    )
    assert r.json()["refund_due"] == "225.00"
    c = client.post(f"/api/v1/purchases/{p['id']}/cancel", headers=till)
    assert c.status_code == 200
    assert c.json()["status"] == "cancelled"
    assert c.json()["refund_due"] == "89.90"
    assert balance(client, till, m["id"]) == "500.00"
    late = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=till,
        json={"external_id": "R2", "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert late.status_code == 409 and late.json()["code"] == "purchase_not_returnable"
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_unknown_purchase_and_other_store(
    client: TestClient, auth: KeyFactory, enrol: Enrol
) -> None:
    till = auth("cashier", store="msk-01")
    r = client.get(f"/api/v1/purchases/{uuid.uuid4()}", headers=till)
    assert r.status_code == 404 and r.json()["code"] == "purchase_not_found"
    p = client.post("/api/v1/purchases", json=receipt("S-1", None), headers=till).json()
    other = auth("cashier", store="msk-02")
    assert client.get(f"/api/v1/purchases/{p['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/purchases/{p['id']}/cancel", headers=other).status_code == 404


def test_verify_catches_lines_that_do_not_add_up(
    client: TestClient, till: dict[str, str], enrol: Enrol, program: Database
) -> None:
    from sqlalchemy import text

    m = enrol("100")
    client.post("/api/v1/purchases", json=receipt("V-1", m["card_number"]), headers=till)
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
    with program.engine.begin() as conn:
        conn.execute(
            text("UPDATE purchase_lines SET total_due = total_due - 100 WHERE line_no = 1")
        )
    with program.session() as s:
        assert [b.check for b in verify(s, stop_at_first=False)] == [
            "purchase_lines_add_up",
            "purchase_line_arithmetic",
        ]


def test_list_purchases_by_member_and_store_scope(
    client: TestClient, auth: KeyFactory, enrol: Enrol
) -> None:
    till, other, admin = auth("cashier"), auth("cashier", store="msk-02"), auth("admin")
    m = enrol()
    ids = [
        client.post(
            "/api/v1/purchases", json=receipt(f"L-{i}", m["card_number"]), headers=till
        ).json()["id"]
        for i in range(3)
    ]
    client.post("/api/v1/purchases", json=receipt("ANON", None), headers=till)
    page = client.get(f"/api/v1/purchases?member_id={m['id']}&limit=2", headers=admin).json()
    assert [p["id"] for p in page["items"]] == [ids[2], ids[1]]
    rest = client.get(
        f"/api/v1/purchases?member_id={m['id']}&limit=2&cursor={page['next_cursor']}", headers=admin
    ).json()
    assert [p["id"] for p in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert len(client.get("/api/v1/purchases", headers=till).json()["items"]) == 4
    assert client.get("/api/v1/purchases", headers=other).json()["items"] == []
