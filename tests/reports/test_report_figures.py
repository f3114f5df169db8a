"""Report figures against values computed by hand on a small fixed data set.

The programme: BONUS worth 0.50 money, earned at 10 % of the money paid, available at once,
expiring after 30 days; half of the members held out as a control group. Months are
counted from M0, the first day of the month three months ago, so that by now every lot
earned in M0 and M1 has expired.

members (joined)            receipts (money paid → BONUS earned)
A treatment (M0+2)          M0+2 s1 1000 → 100;  M1+5 s1 500 → 50
B treatment (M0+9)          M0+9 s2 300 → 30;    now: adjustment +20
C control   (M0+4)          M0+4 s1 400 → 0;     M1+7 s2 200 → 0
D control   (M1+3)          M1+3 s1 250 → 0     (the control group earns nothing)
E treatment (M2+0)          today−6 s1 1000 → 100;  today−5 s2 400, 60 redeemed (30
                            money) → 370 paid → 37
anonymous                   M0+2 s1 200;  M1+5 s2 100
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database, now
from kopilka.core.ids import uuid7
from kopilka.ledger import service as ledger
from kopilka.members.cards import new_card_number, new_referral_code
from kopilka.members.models import Member
from kopilka.program import service as program_service
from kopilka.reports import service as reports
from kopilka.reports.jobs import run_rollup
from kopilka.reports.shared import add_months, first_of_month
from kopilka.spec.control_group import in_control_group
from tests.conftest import KeyFactory

TZ = "Europe/Moscow"
ZONE = zoneinfo.ZoneInfo(TZ)
PROGRAM = """
name: Figures
base_currency: RUB
timezone: Europe/Moscow
currencies:
  - {code: BONUS, name: Bonus, precision: 2, value: "0.50", pending_days: 0,
     expires_after_days: 30, redeem_max_share: "0.5"}
stores:
  - {code: s1, name: One}
  - {code: s2, name: Two}
control_group_share: "0.5"
clock: {max_replay_days: 365}  # the receipts of the months before, replayed
rules:
  - name: Base earn
    earn: {currency: BONUS, percent: "10"}
"""


def today() -> dt.date:
    return now().astimezone(ZONE).date()


M0 = add_months(first_of_month(today()), -3)
M1 = add_months(M0, 1)
M2 = add_months(M0, 2)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=ZONE)


def _id(control: bool) -> uuid.UUID:
    while True:
        candidate = uuid7()
        if in_control_group(candidate, Decimal("0.5")) == control:
            return candidate


@pytest.fixture
def figures(db: Database, client: TestClient, auth: KeyFactory) -> dict[str, Any]:
    """The data set above, rolled up."""
    spec = program_service.parse_program(PROGRAM)
    with db.session() as s:
        program_service.apply_program(s, spec, actor="test")
        s.commit()
    program_service.invalidate_cache()
    joined = {
        "A": (False, M0 + dt.timedelta(days=2)),
        "B": (False, M0 + dt.timedelta(days=9)),
        "C": (True, M0 + dt.timedelta(days=4)),
        "D": (True, M1 + dt.timedelta(days=3)),
        "E": (False, M2),
    }
    cards: dict[str, str] = {}
    ids: dict[str, uuid.UUID] = {}
    with db.session() as s:
        for name, (control, day) in joined.items():
            m = Member(
                id=_id(control),
                card_number=new_card_number("77"),
                referral_code=new_referral_code(),
                name=f"Member {name}",
                created_at=at(day),
                updated_at=at(day),
            )
            s.add(m)
            s.flush()
            cards[name], ids[name] = m.card_number, m.id
        s.commit()
    key = auth("admin")
    receipts = [
        ("A", M0 + dt.timedelta(days=2), "s1", "1000.00", None),
        ("A", M1 + dt.timedelta(days=5), "s1", "500.00", None),
        ("B", M0 + dt.timedelta(days=9), "s2", "300.00", None),
        ("C", M0 + dt.timedelta(days=4), "s1", "400.00", None),
        ("C", M1 + dt.timedelta(days=7), "s2", "200.00", None),
        ("D", M1 + dt.timedelta(days=3), "s1", "250.00", None),
        (None, M0 + dt.timedelta(days=2), "s1", "200.00", None),
        (None, M1 + dt.timedelta(days=5), "s2", "100.00", None),
        ("E", today() - dt.timedelta(days=6), "s1", "1000.00", None),
        ("E", today() - dt.timedelta(days=5), "s2", "400.00", "60.00"),
    ]
    for n, (who, day, store, price, redeem) in enumerate(receipts):
        body: dict[str, Any] = {
            "external_id": f"F-{n}",
            "store": store,
            "channel": "pos",
            "occurred_at": at(day).isoformat(),
            "lines": [{"sku": "X", "quantity": "1", "unit_price": price}],
        }
        if who:
            body["member"] = {"card": cards[who]}
        if redeem:
            body["redeem"] = {"currency": "BONUS", "amount": redeem}
        r = client.post("/api/v1/purchases", json=body, headers=key)
        assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/members/{ids['B']}/adjustments",
        json={"currency": "BONUS", "amount": "20.00", "reason": "goodwill"},
        headers=key,
    )
    assert r.status_code == 201, r.text
    with db.session() as s:
        assert ledger.expire_due(s) == 3  # the lots of A (2) and B; C and D earned none
        s.commit()
    run_rollup(full=True, settle_seconds=0)
    return {"ids": ids, "cards": cards, "key": key}


def run(db: Database, name: str, **filters: Any) -> reports.Report:
    f = reports.Filters(filters.pop("start", M0), filters.pop("end", today()), **filters)
    with db.session() as s:
        return reports.run(s, name, f)


def test_receipts_share_with_card_and_average_receipts(db: Database, figures: Any) -> None:
    s = run(db, "receipts").summary
    assert s["receipts"] == 10
    assert s["receipts_with_card"] == 8
    assert s["card_share"] == Decimal("0.8000")
    assert s["revenue_members"] == Decimal("4020.00")  # 1000+500+300+400+200+250+1000+370
    assert s["revenue_anonymous"] == Decimal("300.00")
    assert s["avg_receipt_members"] == Decimal("502.50")
    assert s["avg_receipt_anonymous"] == Decimal("150.00")
    assert s["points_spent_value"] == Decimal("30.00")  # 60 BONUS × 0.50


def test_store_filter(db: Database, figures: Any) -> None:
    s = run(db, "receipts", store="s1").summary
    assert (s["receipts"], s["receipts_with_card"]) == (6, 5)
    assert (s["revenue_members"], s["revenue_anonymous"]) == (Decimal("3150.00"), Decimal("200.00"))
    assert s["card_share"] == Decimal("0.8333")
    p = run(db, "points", store="s1").summary["BONUS"]
    # only what receipts at s1 moved: no expiry, no adjustment, the redemption was at s2
    assert (p["issued"], p["redeemed"], p["expired"]) == (Decimal(250), 0, 0)


def test_points_breakage_and_redemption(db: Database, figures: Any) -> None:
    p = run(db, "points").summary["BONUS"]
    assert p["issued"] == Decimal("337.00")  # 317 earned + 20 adjusted
    assert p["redeemed"] == Decimal("60.00")
    assert p["expired"] == Decimal("180.00")  # 100+50+30
    assert p["issued_value"] == Decimal("168.50")
    assert p["breakage_rate"] == Decimal("0.5341")  # 180 / 337
    assert p["redemption_rate"] == Decimal("0.1780")  # 60 / 337


def test_liability_now_and_over_time(db: Database, figures: Any) -> None:
    rep = run(db, "liability", grain="month")
    # E: 100 − 60 + 37 = 77, B: the adjustment of 20; everything else expired
    assert rep.summary["BONUS"]["outstanding"] == Decimal("97.00")
    assert rep.summary["BONUS"]["liability"] == Decimal("48.50")
    assert rep.summary["liability_total"] == Decimal("48.50")
    # the running balance from the rollup agrees with the wallets at the end
    assert rep.rows[-1][2] == Decimal("97.00")
    assert rep.rows[-1][3] == Decimal("48.50")
    # end of M0: 100 + 30 earned, nothing expired yet (expiries fall in M1 and M2)
    assert rep.rows[0][:3] == [M0, "BONUS", Decimal("130.00")]


def test_acquisition_and_active_members(db: Database, figures: Any) -> None:
    acq = run(db, "acquisition", grain="month")
    assert acq.summary["members_joined"] == 5
    assert [r[1] for r in acq.rows[:3]] == [3, 1, 1]
    act = run(db, "active", end=M2 + dt.timedelta(days=14)).summary
    assert (act["members"], act["active_30"], act["active_90"]) == (5, 0, 4)
    assert act["active_90_share"] == Decimal("0.8000")
    assert run(db, "active").summary["active_30"] == 1  # E, a few days ago


def test_cohort_retention(db: Database, figures: Any) -> None:
    rows = run(db, "cohorts").rows
    cells = {(r[0], r[2]): (r[1], r[3], r[4]) for r in rows}
    assert cells[(M0, 0)] == (3, 3, Decimal("1.0000"))  # A, B, C bought in M0
    assert cells[(M0, 1)] == (3, 2, Decimal("0.6667"))  # A and C came back in M1
    assert cells[(M0, 2)] == (3, 0, Decimal("0.0000"))
    assert cells[(M1, 0)] == (1, 1, Decimal("1.0000"))  # D
    assert cells[(M1, 1)] == (1, 0, Decimal("0.0000"))


def test_roi_against_the_control_group(db: Database, figures: Any) -> None:
    s = run(db, "roi", end=M2 - dt.timedelta(days=1)).summary
    # outside: A 1500, B 300 (mean 900); control: C 600, D 250 (mean 425)
    assert (s["members_outside"], s["members_control"]) == (2, 2)
    assert (s["revenue_per_member"], s["revenue_per_control_member"]) == (
        Decimal("900.00"),
        Decimal("425.00"),
    )
    assert s["incremental_revenue"] == Decimal("950.00")  # (900 − 425) × 2
    # se = √(720000/2 + 61250/2) = 625; half width = 1.96 × 625 × 2 = 2450
    assert (s["incremental_revenue_low"], s["incremental_revenue_high"]) == (
        Decimal("-1500.00"),
        Decimal("3400.00"),
    )
    assert s["cost"] == Decimal("90.00")  # 180 points × 0.50, no discounts
    assert s["roi"] == Decimal("9.5556")  # (950 − 90) / 90
    assert (s["roi_low"], s["roi_high"]) == (Decimal("-17.6667"), Decimal("36.7778"))
    assert s["lift"] == Decimal("1.1176")  # 475 / 425


def test_incremental_rollup_counts_each_change_once(
    db: Database, client: TestClient, figures: Any
) -> None:
    body = {
        "external_id": "F-late",
        "member": {"card": figures["cards"]["E"]},
        "store": "s1",
        "channel": "pos",
        "occurred_at": now().isoformat(),
        "lines": [{"sku": "X", "quantity": "1", "unit_price": "100.00"}],
    }
    r = client.post("/api/v1/purchases", json=body, headers=figures["key"])
    assert r.status_code == 201, r.text
    run_rollup(settle_seconds=0)
    run_rollup(settle_seconds=0)  # a second run changes nothing
    assert run(db, "receipts").summary["receipts"] == 11
    assert run(db, "points").summary["BONUS"]["issued"] == Decimal("347.00")
    # cancelling it takes the receipt out and the points back, once
    r = client.post(f"/api/v1/purchases/{r.json()['id']}/cancel", headers=figures["key"])
    assert r.status_code == 200, r.text
    run_rollup(settle_seconds=0)
    run_rollup(settle_seconds=0)
    assert run(db, "receipts").summary["receipts"] == 10
    assert run(db, "points").summary["BONUS"]["issued"] == Decimal("337.00")
    with db.session() as s:
        assert reports.outstanding_now(s)["BONUS"] == Decimal("97.00")


def test_settle_time_leaves_fresh_entries_for_the_next_run(
    db: Database, client: TestClient, figures: Any
) -> None:
    r = client.post(
        f"/api/v1/members/{figures['ids']['E']}/adjustments",
        json={"currency": "BONUS", "amount": "5.00", "reason": "late"},
        headers=figures["key"],
    )
    assert r.status_code == 201
    run_rollup(settle_seconds=3600)
    assert run(db, "points").summary["BONUS"]["issued"] == Decimal("337.00")
    with db.session() as s:
        from kopilka.reports.rollup import rollup

        rollup(s, TZ, settle_seconds=0, at=now() + dt.timedelta(seconds=1))
    assert run(db, "points").summary["BONUS"]["issued"] == Decimal("342.00")


def test_outstanding_now_leaves_out_lots_expired_before_the_job_wrote_them_off(
    program: Database,
) -> None:
    # given a member with 100 BONUS expiring in 10 days and 50 that never expire
    t0 = now()
    with program.session() as s:
        m = Member(card_number=new_card_number("77"), referral_code=new_referral_code())
        s.add(m)
        s.flush()
        for key, amount, expires in (("a", "100", t0 + dt.timedelta(days=10)), ("b", "50", None)):
            ledger.credit(
                s,
                key=f"lapse-{key}",
                kind="adjust",
                member_id=m.id,
                currency="BONUS",
                amount=Decimal(amount),
                actor="test",
                counter="adjustment",
                available_at=t0,
                expires_at=expires,
                never_expires=expires is None,
            )
        s.commit()
        base = reports.outstanding_now(s, t0)["BONUS"]
        # when the first lot's expiry has passed but the expiry job has not run
        later = reports.outstanding_now(s, t0 + dt.timedelta(days=11))["BONUS"]
    # then it no longer counts as outstanding, and the other one still does
    assert (base, later) == (Decimal("150"), Decimal("50"))
