"""Coupons at the till: applied in calculate and confirm, used once, given back by cancel,
a released hold and a full return, kept by a partial return."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.core.principal import Principal
from kopilka.coupons.models import Coupon, CouponUse
from kopilka.events.models import OutboxEvent
from kopilka.ledger.verify import verify
from kopilka.purchases import confirmation
from kopilka.purchases.schemas import PurchaseIn
from tests.conftest import KeyFactory
from tests.coupons.conftest import AddCode, MakePool
from tests.purchases.conftest import Enrol, enrol, receipt

__all__ = ["enrol"]  # the fixture, imported to be used here

CALC = "/api/v1/purchases/calculate"
BUY = "/api/v1/purchases"


def uses(db: Database, code: str) -> int:
    with db.session() as s:
        return int(s.execute(select(Coupon.uses).where(Coupon.code == code)).scalar_one())


def line_figures(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(ln["discount"], ln["total_due"], ln["earned"][0]["amount"]) for ln in body["lines"]]


def test_a_percent_coupon_lowers_the_price_and_the_points_follow_the_money_paid(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
    program: Database,
) -> None:
    # given a single-use 10 % code and a member
    code = add_code(make_pool(uses_per_code=1), "AUTUMN-10")
    m = enrol()
    # when the till calculates the worked example's receipt with the code (any case)
    r = client.post(
        CALC, json=receipt("C-1", m["card_number"], coupons=[" autumn-10 "]), headers=admin
    )
    # then 10 % of 629.80 = 62.98 is split by line (17.98 + 45.00) and 5 % is earned on the rest
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["coupons"] == [{"code": "AUTUMN-10", "status": "applied", "reason": None}]
    assert body["discount"] == "62.98"
    assert body["total_due"] == "566.82"
    assert line_figures(body) == [("17.98", "161.82", "8.09"), ("45.00", "405.00", "20.25")]
    assert body["earned"][0]["amount"] == "28.34"
    # and calculating used nothing
    assert uses(program, code) == 0
    # when the receipt is confirmed
    r = client.post(
        BUY, json=receipt("C-1", m["card_number"], coupons=["AUTUMN-10"]), headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["coupons"] == [{"code": "AUTUMN-10", "status": "applied", "reason": None}]
    assert r.json()["discount"] == "62.98"
    # then the code is used, and a second receipt is told so and pays full price
    assert uses(program, code) == 1
    r = client.post(
        BUY, json=receipt("C-2", m["card_number"], coupons=["AUTUMN-10"]), headers=admin
    )
    assert r.status_code == 201
    assert r.json()["coupons"] == [
        {"code": "AUTUMN-10", "status": "rejected", "reason": "coupon_used"}
    ]
    assert r.json()["discount"] == "0.00"
    assert uses(program, code) == 1
    # and one coupon.redeemed event tells of the first receipt only
    with program.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "coupon.redeemed")).all()
        assert [(e.data["code"], e.data["discount"]) for e in events] == [("AUTUMN-10", "62.98")]
        assert verify(s, stop_at_first=False) == []


def test_unknown_codes_are_rejected_and_the_rest_still_applies(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
) -> None:
    add_code(make_pool(reward={"kind": "fixed", "value": "100"}, stackable=True), "MINUS-100")
    m = enrol()
    r = client.post(
        CALC,
        json=receipt("C-3", m["card_number"], coupons=["NOPE-0000", "MINUS-100"]),
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["coupons"] == [
        {"code": "NOPE-0000", "status": "rejected", "reason": "coupon_invalid"},
        {"code": "MINUS-100", "status": "applied", "reason": None},
    ]
    assert r.json()["discount"] == "100.00"
    assert r.json()["total_due"] == "529.80"


def test_multiplier_and_points_coupons_add_to_what_the_rules_earn(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
) -> None:
    x2 = add_code(
        make_pool(reward={"kind": "multiplier", "value": "2", "currency": "BONUS"}, stackable=True),
        "DOUBLE",
    )
    plus = add_code(
        make_pool(reward={"kind": "points", "value": "100", "currency": "BONUS"}, stackable=True),
        "PLUS-100",
    )
    m = enrol()
    r = client.post(BUY, json=receipt("C-4", m["card_number"], coupons=[x2, plus]), headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert [c["status"] for c in body["coupons"]] == ["applied", "applied"]
    # 5 % per line doubled: 8.99 → 17.98, 22.50 → 45.00; plus 100 split by the money paid
    per_line = [D(ln["earned"][0]["amount"]) for ln in body["lines"]]
    assert sum(per_line) == D("17.98") + D("45.00") + D("100")
    assert body["earned"][0]["amount"] == "162.98"
    assert body["discount"] == "0.00"


def test_a_control_group_member_earns_nothing_from_coupons_either(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
) -> None:
    # regression: coupon points and multipliers were credited to held-out members, so the
    # ROI report's control group was not "earning nothing"
    import yaml

    from kopilka.spec.control_group import in_control_group
    from tests.conftest import TEST_PROGRAM

    doc = yaml.safe_load(TEST_PROGRAM)
    doc["control_group_share"] = "0.5"
    assert client.put("/api/v1/program", content=yaml.safe_dump(doc), headers=admin).is_success
    x2 = add_code(
        make_pool(reward={"kind": "multiplier", "value": "2", "currency": "BONUS"}, stackable=True),
        "DOUBLE",
    )
    plus = add_code(
        make_pool(reward={"kind": "points", "value": "100", "currency": "BONUS"}, stackable=True),
        "PLUS-100",
    )
    # given a member held out in the control group
    m = enrol()
    while not in_control_group(uuid.UUID(m["id"]), D("0.5")):
        m = enrol()
    # when they buy with a multiplier and a points coupon
    r = client.post(BUY, json=receipt("C-CG", m["card_number"], coupons=[x2, plus]), headers=admin)
    # then the codes are used but nothing is earned
    assert r.status_code == 201, r.text
    assert [c["status"] for c in r.json()["coupons"]] == ["applied", "applied"]
    assert r.json()["earned"] == []
    assert r.json()["applied_rules"] == []


def test_a_points_coupon_needs_a_member(
    client: TestClient, admin: dict[str, str], make_pool: MakePool, add_code: AddCode
) -> None:
    add_code(make_pool(reward={"kind": "points", "value": "50", "currency": "BONUS"}), "P-50")
    r = client.post(CALC, json=receipt("C-5", None, coupons=["P-50"]), headers=admin)
    assert r.json()["coupons"] == [
        {"code": "P-50", "status": "rejected", "reason": "coupon_not_applicable"}
    ]
    assert r.json()["earned"] == []


def test_cancel_gives_the_use_back(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
    program: Database,
) -> None:
    code = add_code(make_pool(uses_per_code=1), "ONCE-1")
    m = enrol()
    r = client.post(BUY, json=receipt("C-6", m["card_number"], coupons=[code]), headers=admin)
    assert uses(program, code) == 1
    r = client.post(f"{BUY}/{r.json()['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert uses(program, code) == 0
    # cancelling again gives nothing more back
    client.post(f"{BUY}/{r.json()['id']}/cancel", headers=admin)
    assert uses(program, code) == 0
    r = client.post(BUY, json=receipt("C-7", m["card_number"], coupons=[code]), headers=admin)
    assert r.json()["coupons"][0]["status"] == "applied"


def test_a_hold_reserves_the_code_and_its_release_frees_it(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
    program: Database,
) -> None:
    code = add_code(make_pool(uses_per_code=1), "HOLD-1")
    m = enrol()
    r = client.post(
        BUY, json=receipt("C-8", m["card_number"], coupons=[code], hold=True), headers=admin
    )
    assert r.status_code == 201, r.text
    held = r.json()["id"]
    assert uses(program, code) == 1
    r = client.post(CALC, json=receipt("C-9", m["card_number"], coupons=[code]), headers=admin)
    assert r.json()["coupons"][0]["reason"] == "coupon_used"
    client.post(f"{BUY}/{held}/cancel", headers=admin)
    assert uses(program, code) == 0
    with program.session() as s:
        assert (
            s.scalars(select(OutboxEvent).where(OutboxEvent.type == "coupon.redeemed")).all() == []
        )


def test_committing_a_hold_redeems_the_code(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
    program: Database,
) -> None:
    code = add_code(make_pool(uses_per_code=1), "HOLD-2")
    m = enrol()
    r = client.post(
        BUY, json=receipt("C-10", m["card_number"], coupons=[code], hold=True), headers=admin
    )
    r = client.post(f"{BUY}/{r.json()['id']}/commit", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert uses(program, code) == 1
    with program.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "coupon.redeemed")).all()
        assert [e.data["code"] for e in events] == ["HOLD-2"]


def test_a_partial_return_keeps_the_use_and_the_full_return_gives_it_back(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    make_pool: MakePool,
    add_code: AddCode,
    program: Database,
) -> None:
    code = add_code(make_pool(uses_per_code=1), "RET-1")
    m = enrol()
    r = client.post(BUY, json=receipt("C-11", m["card_number"], coupons=[code]), headers=admin)
    pid = r.json()["id"]
    # when one milk of two comes back, the code stays used
    r = client.post(
        f"{BUY}/{pid}/returns",
        json={"external_id": "R-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert uses(program, code) == 1
    # when the rest comes back, the code is free again, once
    r = client.post(
        f"{BUY}/{pid}/returns",
        json={
            "external_id": "R-2",
            "lines": [{"line_no": 1, "quantity": "1"}, {"line_no": 2, "quantity": "1"}],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert uses(program, code) == 0
    with program.session() as s:
        released = s.scalars(select(CouponUse.released_at)).all()
        assert len(released) == 1 and released[0] is not None
        assert verify(s, stop_at_first=False) == []


def test_tills_racing_with_one_single_use_code_use_it_once(
    program: Database, enrol: Enrol, make_pool: MakePool, add_code: AddCode
) -> None:
    """Each till on its own connection confirms its own receipt with the same code at once:
    exactly one receipt gets the discount, the others are told ``coupon_used``."""
    code = add_code(make_pool(uses_per_code=1), "RACE-1")
    tills = 12 if program.dialect == "postgresql" else 4  # SQLite: one writer at a time
    # a member per till (or none), so the members' wallet locks do not queue them
    cards = [enrol()["card_number"] if i % 3 else None for i in range(tills)]
    barrier = threading.Barrier(tills)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    till = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")

    def confirm(i: int) -> None:
        body = PurchaseIn.model_validate(receipt(f"RACE-{i}", cards[i], coupons=[code]))
        barrier.wait()
        for _attempt in range(5):
            try:
                with program.session() as s:
                    _, out = confirmation.confirm(s, body, till)
                    s.commit()
                result = out["coupons"][0]["reason"] or "applied"
                break
            except Problem as exc:  # a use taken between evaluate and consume: try again
                result = f"409:{exc.code}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(tills)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert outcomes == Counter({"applied": 1, "coupon_used": tills - 1})
    assert uses(program, code) == 1
    with program.session() as s:
        assert len(s.scalars(select(CouponUse)).all()) == 1
        assert verify(s, stop_at_first=False) == []


def test_a_till_guessing_codes_gets_429_at_calculate_and_confirm(
    client: TestClient, auth: KeyFactory, make_pool: MakePool, add_code: AddCode
) -> None:
    # given a real code, and a till that sends made-up ones (the limit is 20 per window)
    real = add_code(make_pool(), "REAL-1")
    till = auth("cashier")
    for i in range(20):
        r = client.post(
            CALC, json=receipt(f"G-{i}", None, coupons=[f"GUESS-{i:04d}"]), headers=till
        )
        assert r.status_code == 200
        assert r.json()["coupons"][0]["reason"] == "coupon_invalid"
    # when it sends one more, then calculate and confirm refuse every code check for a while,
    # the real one included, saying how long
    for path in (CALC, BUY):
        r = client.post(path, json=receipt("G-X", None, coupons=[real]), headers=till)
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "rate_limited"
        assert 0 < int(r.headers["Retry-After"]) <= 900
    # and another till is not affected
    r = client.post(CALC, json=receipt("G-Y", None, coupons=[real]), headers=auth("cashier"))
    assert r.status_code == 200 and r.json()["coupons"][0]["status"] == "applied"
