"""Rules over the API and in purchases: versions, CRUD, campaigns and budgets, per-member
caps, history-based conditions, member tags and personal discounts, simulation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.ledger.verify import verify
from kopilka.purchases.models import Purchase
from tests.conftest import TEST_PROGRAM, KeyFactory
from tests.purchases.conftest import Enrol, receipt

RULES: list[dict[str, Any]] = [
    {"name": "Base earn", "earn": {"currency": "BONUS", "percent": "5"}},
    {
        "name": "Dairy x2",
        "key": "dairy-x2",
        "campaign": "dairy-weekend",
        "when": {"lines": {"categories": ["dairy"]}},
        "multiply": {"factor": "2"},
    },
    {
        "name": "Welcome gift",
        "when": {"member": {"first_purchase": True}},
        "reward": {"currency": "BONUS", "amount": "100"},
    },
    {
        "name": "Coffee stamps",
        "when": {"lines": {"skus": ["COFFEE-250"]}},
        "earn": {"currency": "STAMP", "amount": "1", "per": "unit"},
        "caps": {"per_member": {"amount": "2", "period": "month"}},
    },
]
CAMPAIGNS = [
    {
        "code": "dairy-weekend",
        "name": "Double points on dairy",
        "budget": {"currency": "BONUS", "amount": "20"},
    }
]


def _apply(client: TestClient, h: dict[str, str], **changes: Any) -> None:
    doc = yaml.safe_load(TEST_PROGRAM)
    doc.update({"rules": RULES, "campaigns": CAMPAIGNS, **changes})
    r = client.put("/api/v1/program", content=yaml.safe_dump(doc), headers=h)
    assert r.status_code == 200, r.text


def _applied(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["key"]: a for a in p["applied_rules"]}


def test_purchases_name_the_rule_versions_and_history_is_never_rewritten(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given the rules applied, and a member who buys
    _apply(client, admin)
    m = enrol()
    first = client.post(
        "/api/v1/purchases", json=receipt("R-1", m["card_number"]), headers=admin
    ).json()
    assert _applied(first)["base-earn"]["version"] == 1
    # when the base rule changes to 7 %
    r = client.put(
        "/api/v1/rules/base-earn",
        json={"name": "Base earn", "earn": {"currency": "BONUS", "percent": "7"}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["earn"]["percent"] == "7"
    # then new purchases use version 2 and the first keeps version 1 and its points
    second = client.post(
        "/api/v1/purchases", json=receipt("R-2", m["card_number"]), headers=admin
    ).json()
    assert _applied(second)["base-earn"]["version"] == 2
    again = client.get(f"/api/v1/purchases/{first['id']}", headers=admin).json()
    assert _applied(again)["base-earn"]["version"] == 1
    assert again["earned"] == first["earned"]
    history = client.get("/api/v1/rules/base-earn/versions", headers=admin).json()["items"]
    assert [(v["version"], v["definition"]["earn"]["percent"]) for v in history] == [
        (2, "7"),
        (1, "5"),
    ]


def test_rules_crud_with_validation_errors_naming_the_path(
    client: TestClient, admin: dict[str, str], auth: KeyFactory
) -> None:
    _apply(client, admin)
    listed = client.get("/api/v1/rules", headers=admin).json()["items"]
    assert [r["key"] for r in listed] == ["base-earn", "dairy-x2", "welcome-gift", "coffee-stamps"]
    # a bad rule: 422 naming the field inside the rule, nothing changed
    bad = client.post(
        "/api/v1/rules",
        json={"name": "Bad", "earn": {"currency": "NOPE", "percent": "500"}},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"earn.percent"}
    unknown = client.post(
        "/api/v1/rules",
        json={"name": "Bad", "earn": {"currency": "NOPE", "percent": "5"}},
        headers=admin,
    )
    assert [e["field"] for e in unknown.json()["errors"]] == ["earn.currency"]
    two = client.post(
        "/api/v1/rules",
        json={
            "name": "Two",
            "earn": {"currency": "BONUS", "percent": "5"},
            "discount": {"percent": "5"},
        },
        headers=admin,
    )
    assert two.status_code == 422
    assert "exactly one effect" in two.json()["errors"][0]["message"]
    assert len(client.get("/api/v1/rules", headers=admin).json()["items"]) == 4
    # create, duplicate, delete
    made = client.post(
        "/api/v1/rules",
        json={
            "name": "Онлайн бонус",
            "when": {"receipt": {"channels": ["online"]}},
            "earn": {"currency": "BONUS", "percent": "1"},
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["key"] == "onlain-bonus" and made.json()["version"] == 1
    dup = client.post(
        "/api/v1/rules",
        json={"name": "Онлайн бонус", "earn": {"currency": "BONUS", "percent": "2"}},
        headers=admin,
    )
    assert dup.status_code == 409 and dup.json()["code"] == "rule_exists"
    assert client.delete("/api/v1/rules/onlain-bonus", headers=admin).status_code == 204
    assert client.get("/api/v1/rules/onlain-bonus", headers=admin).status_code == 404
    versions = client.get("/api/v1/rules/onlain-bonus/versions", headers=admin).json()["items"]
    assert [(v["version"], v["removed"]) for v in versions] == [(2, True), (1, False)]
    # roles: an analyst reads, a cashier cannot edit
    assert client.get("/api/v1/rules", headers=auth("analyst")).status_code == 200
    r = client.put("/api/v1/rules/x", json={}, headers=auth("cashier"))
    assert r.status_code == 403
    # the JSON Schema is published
    schema = client.get("/api/v1/rules/schema", headers=admin).json()
    assert "Rule" in str(schema["properties"]["rules"]) and "$defs" in schema


def test_campaign_budget_is_never_overspent_and_cancel_gives_it_back(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a campaign with a budget of 20 BONUS doubling dairy points (8.99 extra a receipt)
    _apply(client, admin)
    m = enrol()
    made = []
    for i in range(3):
        p = client.post(
            "/api/v1/purchases", json=receipt(f"B-{i}", m["card_number"]), headers=admin
        ).json()
        made.append(p)
    extras = [_applied(p).get("dairy-x2", {}).get("amount") for p in made]
    # then the third receipt gets only what is left of the budget
    assert extras == ["8.99", "8.99", "2.02"]
    camp = client.get("/api/v1/campaigns/dairy-weekend", headers=admin).json()
    assert (camp["spent"], camp["remaining"], camp["purchases"]) == ("20.00", "0.00", 3)
    # when one is cancelled, its share comes back to the budget
    r = client.post(f"/api/v1/purchases/{made[0]['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    camp = client.get("/api/v1/campaigns/dairy-weekend", headers=admin).json()
    assert (camp["spent"], camp["remaining"]) == ("11.01", "8.99")


def test_per_member_cap_per_month_and_first_purchase_from_real_history(
    client: TestClient, admin: dict[str, str], enrol: Enrol, db: Database
) -> None:
    _apply(client, admin)
    m = enrol()
    coffee2 = [
        {"sku": "COFFEE-250", "category": "grocery", "quantity": "3", "unit_price": "450.00"}
    ]
    p1 = client.post(
        "/api/v1/purchases", json=receipt("C-1", m["card_number"], lines=coffee2), headers=admin
    ).json()
    p2 = client.post(
        "/api/v1/purchases", json=receipt("C-2", m["card_number"], lines=coffee2), headers=admin
    ).json()
    # the welcome gift only on the first purchase
    assert "welcome-gift" in _applied(p1) and "welcome-gift" not in _applied(p2)
    # 3 stamps asked, 2 a month allowed: 2 on the first receipt, none on the second
    assert _applied(p1)["coffee-stamps"]["amount"] == "2"
    assert "coffee-stamps" not in _applied(p2)
    # next month the cap starts again
    p3 = client.post(
        "/api/v1/purchases",
        json=receipt(
            "C-3", m["card_number"], lines=coffee2, occurred_at="2026-12-01T10:00:00+03:00"
        ),
        headers=admin,
    ).json()
    assert _applied(p3)["coffee-stamps"]["amount"] == "2"
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_member_tags_and_personal_discount(
    client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    _apply(
        client,
        admin,
        rules=[
            {
                "name": "Staff",
                "when": {"member": {"tags": ["staff"]}},
                "discount": {"percent": "20"},
            },
            {"name": "Personal", "discount": {"personal": True}},
        ],
        campaigns=[],
    )
    m = enrol()
    r = client.patch(
        f"/api/v1/members/{m['id']}",
        json={"tags": ["staff", "staff"], "personal_discount": "5"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["tags"], r.json()["personal_discount"]) == (["staff"], "5.00")
    bad = client.patch(
        f"/api/v1/members/{m['id']}", json={"personal_discount": "101"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "personal_discount"
    calc = client.post(
        "/api/v1/purchases/calculate", json=receipt("T-1", m["card_number"]), headers=admin
    ).json()
    # 20 % of 629.80 = 125.96; then 5 % of what is left (503.84) = 25.19 (per line, half up)
    assert calc["discount"] == "151.15" and calc["applied_rules"][0]["key"] == "staff"
    assert _applied(calc)["staff"]["amount"] == "125.96"
    assert Decimal(_applied(calc)["personal"]["amount"]) == Decimal("25.19")


def test_simulation_answers_every_verdict_and_writes_nothing(
    client: TestClient, admin: dict[str, str], enrol: Enrol, db: Database
) -> None:
    _apply(client, admin)
    m = enrol()
    body = {
        "receipt": {k: v for k, v in receipt("S-1", m["card_number"]).items() if k != "external_id"}
    }
    r = client.post("/api/v1/rules/simulate", json=body, headers=admin)
    assert r.status_code == 200, r.text
    out = r.json()
    verdicts = {v["key"]: v for v in out["rules"]}
    assert verdicts["base-earn"]["fired"] and verdicts["base-earn"]["version"] == 1
    assert verdicts["welcome-gift"]["fired"]
    assert out["applied_rules"][0]["reason"] == "5 % of the money paid"
    # a draft: the base rule at 10 % for gold members only, and a hypothetical member
    draft = {
        "receipt": {k: v for k, v in receipt("S-2", None).items() if k != "external_id"},
        "rules": [
            {
                "name": "Gold",
                "when": {"member": {"tiers": ["gold"]}},
                "earn": {"currency": "BONUS", "percent": "10"},
            }
        ],
        "member_context": {"tier": "gold"},
    }
    r = client.post("/api/v1/rules/simulate", json=draft, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["earned"] == [
        {
            "currency": "BONUS",
            "amount": "62.98",
            "available_at": r.json()["earned"][0]["available_at"],
        }
    ]
    assert r.json()["program_version"] is None
    draft["member_context"] = {"tier": "silver"}
    r = client.post("/api/v1/rules/simulate", json=draft, headers=admin)
    assert r.json()["rules"] == [
        {
            "key": "gold",
            "version": None,
            "name": "Gold",
            "effect": "earn",
            "fired": False,
            "reason": "tier silver not in gold",
        }
    ]
    # a batch, and a bad draft naming the path
    batch = client.post(
        "/api/v1/rules/simulate",
        json={"receipts": [body["receipt"], body["receipt"]]},
        headers=admin,
    )
    assert len(batch.json()["items"]) == 2
    bad = client.post(
        "/api/v1/rules/simulate",
        json={**body, "rules": [{"name": "x", "earn": {"currency": "BONUS"}}]},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rules[0].earn"
    # nothing was written
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Purchase)) == 0
    # and the programme in force is unchanged
    assert (
        next(r["key"] for r in client.get("/api/v1/rules", headers=admin).json()["items"])
        == "base-earn"
    )


def test_a_draft_names_versions_only_for_rules_it_leaves_unchanged(
    client: TestClient, admin: dict[str, str]
) -> None:
    _apply(client, admin)
    body = {
        "receipt": {k: v for k, v in receipt("S-3", None).items() if k != "external_id"},
        "member_context": {"purchases_count": 3},
        "rules": [
            {"name": "Base earn", "earn": {"currency": "BONUS", "percent": "5"}},  # unchanged
            {"name": "Welcome gift", "reward": {"currency": "BONUS", "amount": "50"}},  # changed
        ],
    }
    r = client.post("/api/v1/rules/simulate", json=body, headers=admin)
    assert r.status_code == 200, r.text
    versions = {v["key"]: v["version"] for v in r.json()["rules"]}
    assert versions == {"base-earn": 1, "welcome-gift": None}


def test_a_cumulative_discount_counts_lifetime_spend_net_of_returns(
    client: TestClient, admin: dict[str, str], enrol: Enrol, db: Database
) -> None:
    # given a ladder: 5 % off from 1,000 of lifetime spend, 10 % from 2,000
    ladder = {
        "name": "Cumulative",
        "key": "cumulative",
        "discount": {
            "ladder": [
                {"from_spend": "1000", "percent": "5"},
                {"from_spend": "2000", "percent": "10"},
            ]
        },
    }
    _apply(client, admin, rules=[RULES[0], ladder], campaigns=[])
    m = enrol()
    coffee = [{"sku": "COFFEE-250", "category": "grocery", "quantity": "3", "unit_price": "450.00"}]
    one = [{"sku": "COFFEE-250", "category": "grocery", "quantity": "1", "unit_price": "450.00"}]
    # when the member pays 1,350 and then returns one unit (450 refunded)
    p1 = client.post(
        "/api/v1/purchases", json=receipt("L-1", m["card_number"], lines=coffee), headers=admin
    ).json()
    assert p1["discount"] == "0.00"  # nothing spent before the first receipt
    r = client.post(
        f"/api/v1/purchases/{p1['id']}/returns",
        json={"external_id": "LR-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # then the next receipt sees 900, below the first step: no discount
    p2 = client.post(
        "/api/v1/purchases", json=receipt("L-2", m["card_number"], lines=one), headers=admin
    ).json()
    assert p2["discount"] == "0.00"
    assert "cumulative" not in _applied(p2)
    # and after it (1,350 net) the first step applies: 5 % of 450
    p3 = client.post(
        "/api/v1/purchases", json=receipt("L-3", m["card_number"], lines=one), headers=admin
    ).json()
    assert p3["discount"] == "22.50"
    assert _applied(p3)["cumulative"]["amount"] == "22.50"
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []
