"""The tier movement and campaign reports against values computed by hand.

The programme: BONUS worth 0.50 money, earned at 10 % of the money paid; campaign
``promo`` doubles the points of dairy lines (``multiply`` ×2), campaign ``sale`` takes 10 %
off bread lines; half of the members held out as a control group (they get nothing from any
rule); tiers by spend over 365 days: silver from 0, gold from 1000, one day of grace.

Days are counted back from today (d−8 is eight days ago), every receipt at noon, at the
till (channel pos). Every member starts at silver.

 #  who        day  store  lines                       money paid  rules
 1  A          d−8  s1     dairy 300, other 200        500         promo +30 BONUS
 2  B          d−8  s2     bread 200                   180         sale −20
 3  D          d−7  s1     other 1200                  1200        (D → gold: upgrade)
 4  C          d−6  s1     other 600                   600
 5  D          d−5  s1     dairy 100                   100         promo +10 BONUS
 6  E control  d−4  s1     dairy 500                   500         (nothing: control group)
 7  anonymous  d−4  s2     bread 300                   270         sale −30
 8  A          d−3  s2     bread 1000                  900         sale −100 (A: 1400 → gold)
 9  B          d−2  s1     other 400                   400
Then receipt 3 is cancelled (D's spend falls to 100); the re-evaluation two days ago starts
D's grace period, the one now ends it (gold → silver, grace_expired); C is given gold by
hand now (manual). F, outside the control group, buys nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database, now
from kopilka.core.ids import uuid7
from kopilka.members.cards import new_card_number, new_referral_code
from kopilka.members.models import Member
from kopilka.program import service as program_service
from kopilka.reports import service as reports
from kopilka.reports.jobs import run_rollup
from kopilka.reports.shared import bucket_day
from kopilka.spec.control_group import in_control_group
from kopilka.tiers import service as tiers
from tests.conftest import KeyFactory

ZONE = zoneinfo.ZoneInfo("Europe/Moscow")
PROGRAM = """
name: Campaigns
base_currency: RUB
timezone: Europe/Moscow
currencies:
  - {code: BONUS, name: Bonus, precision: 2, value: "0.50", pending_days: 0,
     expires_after_days: 365, redeem_max_share: "0.5"}
stores:
  - {code: s1, name: One}
  - {code: s2, name: Two}
control_group_share: "0.5"
clock: {max_replay_days: 365}  # the receipts of the months before, replayed
campaigns:
  - {code: promo, name: Double dairy}
  - {code: sale, name: Bread sale}
rules:
  - name: Base earn
    earn: {currency: BONUS, percent: "10"}
  - name: Dairy x2
    key: dairy-x2
    campaign: promo
    when: {lines: {categories: [dairy]}}
    multiply: {factor: "2", currency: BONUS}
  - name: Bread 10 % off
    key: bread-10
    campaign: sale
    when: {lines: {categories: [bread]}}
    discount: {percent: "10"}
tiers:
  metric: spend
  window: {rolling_days: 365}
  grace_days: 1
  levels:
    - {code: silver, name: Silver, threshold: "0"}
    - {code: gold, name: Gold, threshold: "1000"}
"""


def today() -> dt.date:
    return now().astimezone(ZONE).date()


def day(back: int) -> dt.date:
    return today() - dt.timedelta(days=back)


def _id(control: bool) -> uuid.UUID:
    while True:
        candidate = uuid7()
        if in_control_group(candidate, Decimal("0.5")) == control:
            return candidate


@pytest.fixture
def data(db: Database, client: TestClient, auth: KeyFactory) -> dict[str, Any]:
    """The data set above, rolled up."""
    with db.session() as s:
        program_service.apply_program(s, program_service.parse_program(PROGRAM), actor="test")
        s.commit()
    program_service.invalidate_cache()
    joined = dt.datetime.combine(day(30), dt.time(12), tzinfo=ZONE)
    ids: dict[str, uuid.UUID] = {}
    cards: dict[str, str] = {}
    with db.session() as s:
        for name in "ABCDEF":
            m = Member(
                id=_id(control=name == "E"),
                card_number=new_card_number("77"),
                referral_code=new_referral_code(),
                name=f"Member {name}",
                tier="silver",
                created_at=joined,
                updated_at=joined,
            )
            s.add(m)
            s.flush()
            ids[name], cards[name] = m.id, m.card_number
        s.commit()
    key = auth("admin")
    receipts = [
        ("A", 8, "s1", [("dairy", "300.00"), ("other", "200.00")]),
        ("B", 8, "s2", [("bread", "200.00")]),
        ("D", 7, "s1", [("other", "1200.00")]),
        ("C", 6, "s1", [("other", "600.00")]),
        ("D", 5, "s1", [("dairy", "100.00")]),
        ("E", 4, "s1", [("dairy", "500.00")]),
        (None, 4, "s2", [("bread", "300.00")]),
        ("A", 3, "s2", [("bread", "1000.00")]),
        ("B", 2, "s1", [("other", "400.00")]),
    ]
    made = []
    for n, (who, back, store, lines) in enumerate(receipts):
        body: dict[str, Any] = {
            "external_id": f"C-{n}",
            "store": store,
            "channel": "pos",
            "occurred_at": dt.datetime.combine(day(back), dt.time(12), tzinfo=ZONE).isoformat(),
            "lines": [
                {"sku": f"{cat}-{i}", "category": cat, "quantity": "1", "unit_price": price}
                for i, (cat, price) in enumerate(lines)
            ],
        }
        if who:
            body["member"] = {"card": cards[who]}
        r = client.post("/api/v1/purchases", json=body, headers=key)
        assert r.status_code == 201, r.text
        made.append(r.json())
    # the receipts' figures are what the table above says
    assert [p["total_due"] for p in made] == [
        "500.00",
        "180.00",
        "1200.00",
        "600.00",
        "100.00",
        "500.00",
        "270.00",
        "900.00",
        "400.00",
    ]
    r = client.post(f"/api/v1/purchases/{made[2]['id']}/cancel", headers=key)
    assert r.status_code == 200, r.text
    moment = now()
    with db.session() as s:
        assert tiers.reevaluate(s, at=moment - dt.timedelta(days=2)) == 1  # D: grace starts
        assert tiers.reevaluate(s, at=moment) == 1  # D: grace over, down to silver
    r = client.post(
        f"/api/v1/members/{ids['C']}/tier",
        json={"tier": "gold", "reason": "a valued customer"},
        headers=key,
    )
    assert r.status_code == 200, r.text
    run_rollup(full=True, settle_seconds=0)
    return {"ids": ids, "key": key, "moment": moment}


def run(db: Database, name: str, **filters: Any) -> reports.Report:
    f = reports.Filters(filters.pop("start", day(9)), filters.pop("end", today()), **filters)
    with db.session() as s:
        return reports.run(s, name, f)


def by_campaign(rep: reports.Report) -> dict[str, dict[str, Any]]:
    return {row[0]: dict(zip(rep.columns, row, strict=True)) for row in rep.rows}


# ---------------------------------------------------------------------------- tier movement


def test_tier_movement_per_day_and_the_matrix(db: Database, data: Any) -> None:
    rep = run(db, "tier_movement")
    assert rep.columns == [
        "period",
        "changes",
        "upgrades",
        "downgrades",
        "manual",
        "program_changed",
    ]
    assert len(rep.rows) == 10  # d−9 … today
    moved_today = data["moment"].astimezone(ZONE).date()
    rows = {r[0]: r[1:] for r in rep.rows if r[1]}
    assert rows == {
        day(7): [1, 1, 0, 0, 0],  # D silver → gold at receipt 3
        day(3): [1, 1, 0, 0, 0],  # A silver → gold at receipt 8 (500 + 900 = 1400)
        moved_today: [2, 0, 1, 1, 0],  # D gold → silver (grace over), C gold by hand
    }
    s = rep.summary
    assert (s["changes"], s["upgrades"], s["downgrades"], s["manual"]) == (4, 2, 1, 1)
    assert s["program_changed"] == 0
    assert s["by_reason"] == {
        "upgrade": 2,
        "downgrade": 0,
        "grace_expired": 1,
        "manual": 1,
        "program_changed": 0,
    }
    assert s["members"] == 3  # A, C, D
    assert s["matrix"] == [
        {
            "from": "silver",
            "to": "gold",
            "changes": 3,
            "upgrades": 2,
            "downgrades": 0,
            "manual": 1,
            "program_changed": 0,
        },
        {
            "from": "gold",
            "to": "silver",
            "changes": 1,
            "upgrades": 0,
            "downgrades": 1,
            "manual": 0,
            "program_changed": 0,
        },
    ]


def test_tier_movement_honours_period_grain_and_tier(db: Database, data: Any) -> None:
    # from d−5: D's upgrade on d−7 is out
    s = run(db, "tier_movement", start=day(5)).summary
    assert (s["changes"], s["upgrades"], s["downgrades"], s["manual"]) == (3, 1, 1, 1)
    # by week: the same changes in their ISO weeks
    weekly = run(db, "tier_movement", grain="week")
    expected: dict[dt.date, int] = {}
    for d, n in ((day(7), 1), (day(3), 1), (data["moment"].astimezone(ZONE).date(), 2)):
        expected[bucket_day(d, "week")] = expected.get(bucket_day(d, "week"), 0) + n
    assert {r[0]: r[1] for r in weekly.rows if r[1]} == expected
    assert weekly.rows[0][0] == bucket_day(day(9), "week")
    # tier: changes from or to it; every change here touches gold
    assert run(db, "tier_movement", tier="gold").summary["changes"] == 4
    assert run(db, "tier_movement", tier="platinum").summary["changes"] == 0
    # store and channel do not apply, and the report says so
    rep = run(db, "tier_movement", store="s1", channel="pos")
    assert rep.summary["changes"] == 4
    assert rep.as_json()["ignored_filters"] == ["store", "channel"]


def test_tier_mix_is_a_snapshot(db: Database, data: Any) -> None:
    rep = run(db, "tiers", start=day(1), store="s1", tier="gold")
    # now: A and C gold; B, D, E, F silver — whatever the filters
    assert [r[:2] for r in rep.rows] == [["silver", 4], ["gold", 2]]
    assert rep.summary["snapshot"] is True and rep.summary["members"] == 6
    assert rep.as_json()["ignored_filters"] == ["store", "tier"]


# ---------------------------------------------------------------------------- campaigns


def test_campaign_cost_and_lift(db: Database, data: Any) -> None:
    rep = run(db, "campaigns")
    assert rep.columns == [
        "campaign",
        "name",
        "purchases",
        "members",
        "points_BONUS",
        "value_BONUS",
        "points_value",
        "discounts",
        "cost",
        "revenue_per_member",
        "members_others",
        "revenue_per_member_others",
        "lift",
    ]
    c = by_campaign(rep)
    # promo: receipts 1 (A) and 5 (D); receipt 6 is E's, in the control group
    assert c["promo"] == {
        "campaign": "promo",
        "name": "Double dairy",
        "purchases": 2,
        "members": 2,
        "points_BONUS": Decimal("40.00"),  # 30 + 10 more than the base earn gave
        "value_BONUS": Decimal("20.00"),  # × 0.50
        "points_value": Decimal("20.00"),
        "discounts": Decimal("0.00"),
        "cost": Decimal("20.00"),
        # A paid 500 + 900, D 100 (receipt 3 was cancelled): 1500 / 2
        "revenue_per_member": Decimal("750.00"),
        # the other active members outside the control group: B 180 + 400, C 600
        "members_others": 2,
        "revenue_per_member_others": Decimal("590.00"),
        "lift": Decimal("0.2712"),  # 750 / 590 − 1 = 0.27118…
    }
    # sale: receipts 2 (B), 7 (anonymous) and 8 (A): 20 + 30 + 100 off
    assert c["sale"] == {
        "campaign": "sale",
        "name": "Bread sale",
        "purchases": 3,
        "members": 2,
        "points_BONUS": Decimal("0.00"),
        "value_BONUS": Decimal("0.00"),
        "points_value": Decimal("0.00"),
        "discounts": Decimal("150.00"),
        "cost": Decimal("150.00"),
        "revenue_per_member": Decimal("990.00"),  # A 1400, B 580
        "members_others": 2,
        "revenue_per_member_others": Decimal("350.00"),  # C 600, D 100
        "lift": Decimal("1.8286"),  # 990 / 350 − 1 = 1.82857…
    }
    s = rep.summary
    assert (s["campaigns"], s["purchases"], s["members_reached"]) == (2, 5, 3)  # A, B, D
    assert s["points"] == {"BONUS": Decimal("40.00")}
    assert (s["points_value"], s["discounts"], s["cost"]) == (
        Decimal("20.00"),
        Decimal("150.00"),
        Decimal("170.00"),
    )
    # A, B, C, D bought and are outside the control group: 2680 / 4
    assert (s["members_active"], s["revenue_per_active_member"]) == (4, Decimal("670.00"))


def test_campaigns_by_store_and_period(db: Database, data: Any) -> None:
    c = by_campaign(run(db, "campaigns", store="s1"))
    # at s1: A 500 and D 100 reached by promo; B 400 and C 600 not: 300 / 500 − 1
    assert (c["promo"]["purchases"], c["promo"]["points_BONUS"]) == (2, Decimal("40.00"))
    assert (c["promo"]["revenue_per_member"], c["promo"]["revenue_per_member_others"]) == (
        Decimal("300.00"),
        Decimal("500.00"),
    )
    assert c["promo"]["lift"] == Decimal("-0.4000")
    # no bread was bought at s1
    assert (c["sale"]["purchases"], c["sale"]["members"], c["sale"]["cost"]) == (
        0,
        0,
        Decimal("0.00"),
    )
    assert c["sale"]["revenue_per_member"] is None and c["sale"]["lift"] is None
    assert c["sale"]["revenue_per_member_others"] == Decimal("400.00")  # 1600 / 4
    # from d−5: promo reached D (100) only; A 900 and B 400 are the others; C bought before
    c = by_campaign(run(db, "campaigns", start=day(5)))
    assert (c["promo"]["purchases"], c["promo"]["members"]) == (1, 1)
    assert c["promo"]["points_BONUS"] == Decimal("10.00")
    assert c["promo"]["revenue_per_member_others"] == Decimal("650.00")
    assert c["promo"]["lift"] == Decimal("-0.8462")  # 100 / 650 − 1 = −0.84615…
    assert (c["sale"]["purchases"], c["sale"]["discounts"]) == (2, Decimal("130.00"))
    # nothing went through another channel
    rep = run(db, "campaigns", channel="online")
    assert rep.summary["purchases"] == 0 and rep.summary["cost"] == Decimal("0.00")


def test_new_reports_over_http_as_json_and_csv(db: Database, data: Any, client: TestClient) -> None:
    q = f"from={day(9)}&to={today()}&store=s1&tier=gold"
    r = client.get(f"/api/v1/reports/campaigns?{q}", headers=data["key"])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ignored_filters"] == ["tier"]
    promo = next(i for i in doc["items"] if i["campaign"] == "promo")
    assert (promo["cost"], promo["lift"]) == ("20.00", "-0.4000")
    r = client.get(f"/api/v1/reports/campaigns?{q}&format=csv", headers=data["key"])
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["campaign", "name", "purchases", "members"]
    assert rows[1][:4] == ["promo", "Double dairy", "2", "2"]
    r = client.get(
        f"/api/v1/reports/tier_movement?{q}", headers={**data["key"], "Accept": "text/csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == "period,changes,upgrades,downgrades,manual,program_changed"
    assert f"{day(3)},1,1,0,0,0" in lines
