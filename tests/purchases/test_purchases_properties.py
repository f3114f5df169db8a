"""Random receipts, redemptions and returns in random pieces: money and points come back
exactly, and per-line figures always add up to the totals."""

from __future__ import annotations

import uuid
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from tests.conftest import KeyFactory
from tests.purchases.conftest import Enrol, balance

line = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(["MILK", "BREAD", "CHEESE", "COFFEE", "APPLES"]),
        "quantity": st.one_of(
            st.integers(1, 5).map(str), st.decimals(D("0.001"), D("3"), places=3).map(str)
        ),
        "unit_price": st.decimals(D("0.01"), D("5000"), places=2).map(str),
    }
)

redeem = st.one_of(st.none(), st.just("max"), st.decimals(D("0.01"), D("300"), places=2).map(str))


def _sum(xs: list[str]) -> D:
    return sum((D(x) for x in xs), D(0))


def check_lines_add_up(p: dict[str, Any]) -> None:
    lines = p["lines"]
    assert _sum([ln["amount"] for ln in lines]) == D(p["subtotal"])
    assert _sum([ln["discount"] for ln in lines]) == D(p["discount"])
    assert _sum([ln["total_due"] for ln in lines]) == D(p["total_due"])
    for ln in lines:
        assert D(ln["total_due"]) >= 0
        assert D(ln["total_due"]) == (
            D(ln["amount"]) - D(ln["discount"]) - _sum([r["value"] for r in ln["redeemed"]])
        )
    for r in p["redeemed"]:
        assert _sum(
            [x["amount"] for ln in lines for x in ln["redeemed"] if x["currency"] == r["currency"]]
        ) == D(r["amount"])
        assert _sum([x["value"] for ln in lines for x in ln["redeemed"]]) == D(r["value"])
    for e in p["earned"]:
        assert _sum(
            [x["amount"] for ln in lines for x in ln["earned"] if x["currency"] == e["currency"]]
        ) == D(e["amount"])


def test_random_receipts_and_returns_reverse_exactly(
    client: TestClient, auth: KeyFactory, enrol: Enrol, program: Database
) -> None:
    till, admin = auth("cashier"), auth("admin")

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        lines=st.lists(line, min_size=1, max_size=8),
        redeem=redeem,
        start=st.decimals(D("0"), D("2000"), places=2),
        data=st.data(),
    )
    def run(lines: list[dict[str, str]], redeem: str | None, start: D, data: st.DataObject) -> None:
        m = enrol(str(start))
        before = balance(client, admin, m["id"])
        body: dict[str, Any] = {
            "external_id": f"P-{uuid.uuid4().hex[:10]}",
            "store": "msk-01",
            "occurred_at": "2026-11-22T10:00:00+03:00",
            "lines": lines,
            "member": {"card": m["card_number"]},
        }
        if redeem is not None:
            body["redeem"] = {"currency": "BONUS", "amount": redeem}
        r = client.post("/api/v1/purchases", json=body, headers=till)
        if r.status_code == 422:
            assert r.json()["code"] in ("insufficient_balance", "redeem_limit_exceeded")
            assert balance(client, admin, m["id"]) == before
            return
        assert r.status_code == 201, r.text
        p = r.json()
        check_lines_add_up(p)
        redeemed = _sum([x["amount"] for x in p["redeemed"]])
        earned = _sum([x["amount"] for x in p["earned"]])
        assert D(balance(client, admin, m["id"])) == D(before) - redeemed + earned
        # return everything in random pieces
        remaining = {i + 1: D(ln["quantity"]) for i, ln in enumerate(lines)}
        refunded = D(0)
        n = 0
        while any(q > 0 for q in remaining.values()):
            line_no = data.draw(st.sampled_from([k for k, q in remaining.items() if q > 0]))
            left = remaining[line_no]
            q = data.draw(st.one_of(st.just(left), st.decimals(D("0.001"), left, places=3)))
            n += 1
            ret = client.post(
                f"/api/v1/purchases/{p['id']}/returns",
                headers=till,
                json={"external_id": f"R{n}", "lines": [{"line_no": line_no, "quantity": str(q)}]},
            )
            assert ret.status_code == 201, ret.text
            refunded += D(ret.json()["refund_due"])
            remaining[line_no] = left - q
        assert refunded == D(p["total_due"])
        assert balance(client, admin, m["id"]) == before

    run()
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
