"""The referrals' report over HTTP, on a small known set (tests/referrals/dataset.py):
the funnel by ISO week, rejections by reason, the cost in money, exact, the revenue of
referred members against the others, and the CSV's bytes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.referrals.service import release_due
from tests.conftest import TEST_PROGRAM, Clock, KeyFactory
from tests.referrals import dataset
from tests.referrals.conftest import Enrol, apply

PERIOD = {"from": "2026-11-30", "to": "2026-12-20"}


def test_the_report_counts_the_funnel_by_week_the_cost_and_the_revenue(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given the known set of referrals
    dataset.make(client, db, admin, enrol, referrals)
    # when the report of three weeks is asked for
    r = client.get("/api/v1/reports/referrals", params=PERIOD, headers=admin)
    # then every figure is the one the set makes
    assert r.status_code == 200, r.text
    assert r.json() == {
        "report": "referrals",
        "period": {"from": "2026-11-30", "to": "2026-12-20", "timezone": "Europe/Moscow"},
        "base_currency": "RUB",
        "weeks": [
            {
                "week": "2026-W49",
                "week_start": "2026-11-30",
                "links_opened": 7,
                "joined": 5,
                "qualified": 3,
                "rewarded": 0,
            },
            {
                "week": "2026-W50",
                "week_start": "2026-12-07",
                "links_opened": 0,
                "joined": 0,
                "qualified": 0,
                "rewarded": 0,
            },
            {
                "week": "2026-W51",
                "week_start": "2026-12-14",
                "links_opened": 1,
                "joined": 0,
                "qualified": 0,
                "rewarded": 1,
            },
        ],
        "totals": {"links_opened": 8, "joined": 5, "qualified": 3, "rewarded": 1},
        "outcomes": [
            {"status": "rejected", "reason": "self_referral", "referrals": 1},
            {"status": "reversed", "reason": "purchase_cancelled", "referrals": 1},
        ],
        # Olga's 200 and Anna's 300 stand (Boris's were revoked, Lena's wait for a review)
        "cost": [
            {
                "currency": "BONUS",
                "points_pending": "0.00",
                "points_standing": "500.00",
                "value": "0.37",
                "money": "185.00",
            }
        ],
        "cost_total": "185.00",
        "coupons": [],
        "revenue": {
            # Olga 1200 + 333.33, Lena 1100 (Boris's receipt was cancelled)
            "referred": {"members": 2, "revenue": "2633.33", "revenue_per_member": "1316.67"},
            # Maria 3000, Anna 1000, Ivan 700 (his referral was rejected)
            "others": {"members": 3, "revenue": "4700.00", "revenue_per_member": "1566.67"},
        },
    }


def test_the_csv_is_for_russian_excel(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given the known set
    dataset.make(client, db, admin, enrol, referrals)
    # when the CSV is asked for, as a format and as a file
    r = client.get("/api/v1/reports/referrals", params={**PERIOD, "format": "csv"}, headers=admin)
    same = client.get("/api/v1/reports/referrals.csv", params=PERIOD, headers=admin)
    # then it is UTF-8 with a BOM, ';' and CRLF, tables one after another
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        'attachment; filename="kopilka-referrals-2026-11-30-2026-12-20.csv"'
    )
    assert (
        r.content
        == (
            "\ufeffweek;week_start;links_opened;joined;qualified;rewarded\r\n"
            "2026-W49;2026-11-30;7;5;3;0\r\n"
            "2026-W50;2026-12-07;0;0;0;0\r\n"
            "2026-W51;2026-12-14;1;0;0;1\r\n"
            "total;;8;5;3;1\r\n"
            "\r\n"
            "status;reason;referrals\r\n"
            "rejected;self_referral;1\r\n"
            "reversed;purchase_cancelled;1\r\n"
            "\r\n"
            "currency;points_pending;points_standing;value;money\r\n"
            "BONUS;0.00;500.00;0.37;185.00\r\n"
            "total;;;;185.00\r\n"
            "\r\n"
            "coupon_pool;rewards\r\n"
            "\r\n"
            "group;members;revenue;revenue_per_member\r\n"
            "referred;2;2633.33;1316.67\r\n"
            "others;3;4700.00;1566.67\r\n"
        ).encode()
    )
    assert same.status_code == 200 and same.content == r.content


def test_bad_dates_are_a_422_naming_the_field_and_roles_are_kept(
    client: TestClient, admin: dict[str, str], auth: KeyFactory, referrals: Clock
) -> None:
    # when a date is not a date, or the period runs backwards
    bad = client.get("/api/v1/reports/referrals", params={"from": "2026-13-01"}, headers=admin)
    back = client.get(
        "/api/v1/reports/referrals.csv",
        params={"from": "2026-12-02", "to": "2026-12-01"},
        headers=admin,
    )
    # then the problem names the parameter
    assert bad.status_code == 422, bad.text
    assert [e["field"] for e in bad.json()["errors"]] == ["from"]
    assert back.status_code == 422 and [e["field"] for e in back.json()["errors"]] == ["from"]
    # and an analyst may read the report, support and cashiers may not
    assert client.get("/api/v1/reports/referrals", headers=auth("analyst")).status_code == 200
    assert client.get("/api/v1/reports/referrals", headers=auth("cashier")).status_code == 403
    # with no dates: the 90 days up to today
    r = client.get("/api/v1/reports/referrals", headers=admin)
    period = {"from": "2026-09-07", "to": "2026-12-05", "timezone": "Europe/Moscow"}
    assert r.json()["period"] == period


COUPON_PROGRAM = (
    TEST_PROGRAM
    + """
referrals:
  friend_reward: {coupon_pool: "=Скидка 10%"}
  referrer_reward: {currency: BONUS, amount: "300"}
  qualifying: {min_paid: "1000.00", within_days: 30}
  hold_days: 14
"""
)


def test_coupon_rewards_are_counted_apart_and_their_pool_cannot_run_in_excel(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given a pool whose name starts as a formula, and a programme giving the friend its coupon
    r = client.post(
        "/api/v1/coupon-pools",
        json={"name": "=Скидка 10%", "reward": {"kind": "percent", "value": "10"}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    apply(db, COUPON_PROGRAM)
    # when a friend qualifies and the hold ends
    anna = enrol()
    olga = enrol(code=anna["referral_code"])
    dataset.buy(client, admin, "R-1", olga["card_number"], "1000")
    referrals.advance(days=15)
    with db.session() as s:
        assert release_due(s, referrals.at) == 1
        s.commit()
    # then the coupon is counted apart from the referrer's 300 points (worth 1.00 each)
    got = client.get("/api/v1/reports/referrals", params=PERIOD, headers=admin).json()
    assert got["coupons"] == [{"coupon_pool": "=Скидка 10%", "rewards": 1}]
    assert [(c["currency"], c["points_standing"], c["money"]) for c in got["cost"]] == [
        ("BONUS", "300.00", "300.00")
    ]
    assert got["cost_total"] == "300.00"
    # and in the CSV the pool's name is text, not a formula
    csv = client.get("/api/v1/reports/referrals.csv", params=PERIOD, headers=admin).content
    assert "coupon_pool;rewards\r\n'=Скидка 10%;1\r\n".encode() in csv
