"""The rules engine, pure: every condition, effect, cap and stacking mode, and the order of
evaluation on receipts where order matters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.rules.helpers import MSK, SAT, earned, fired, line, member, program, receipt, run, why

BASE = {"name": "Base earn", "earn": {"currency": "BONUS", "percent": "5"}}
MILK = line("MILK-1L", "89.90", "2", "dairy")
COFFEE = line("COFFEE-250", "450.00", "1", "grocery")


def test_the_contract_base_rule_earns_five_percent_per_line_rounded_down() -> None:
    # given the contract's base rule and its worked receipt
    rules = program([BASE])
    # when it is evaluated for a member
    p, e, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    # then each line earns 5 % of the money paid, rounded down to 0.01
    assert earned(e) == ["8.99", "22.50"]
    assert fired(p) == ["base-earn"]
    assert e.applied[0].reason == "5 % of the money paid" and e.applied[0].amount == Decimal(
        "31.49"
    )


def test_anonymous_receipts_earn_nothing_but_get_open_discounts() -> None:
    rules = program([BASE, {"name": "Happy hour", "discount": {"percent": "10"}}])
    p, e, _ = run(rules, receipt(COFFEE))
    assert e.earned == {}
    assert p.line_discounts == [Decimal("45.00")]
    assert why(p, "base-earn") == "no member on the receipt"


def test_members_only_discount_needs_a_member() -> None:
    rules = program(
        [{"name": "Member price", "when": {"member": {}}, "discount": {"percent": "10"}}]
    )
    p, _, _ = run(rules, receipt(COFFEE))
    assert p.line_discounts == [Decimal(0)]
    assert why(p, "member-price") == "no member on the receipt"


@pytest.mark.parametrize(
    ("earn", "expected"),
    [
        ({"amount": "10", "per": "receipt"}, ["2.85", "7.15"]),  # split by money paid
        ({"amount": "10", "per": "line"}, ["10.00", "10.00"]),
        ({"amount": "10", "per": "unit"}, ["20.00", "10.00"]),
    ],
)
def test_fixed_earn_per_receipt_line_or_unit(earn: dict[str, str], expected: list[str]) -> None:
    rules = program([{"name": "Fixed", "earn": {"currency": "BONUS", **earn}}])
    _, e, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    assert earned(e) == expected


def test_lines_condition_by_category_sku_and_exclusions() -> None:
    rules = program(
        [
            {
                "name": "Dairy bonus",
                "when": {"lines": {"categories": ["dairy"], "skus": ["COFFEE-250"]}},
                "earn": {"currency": "BONUS", "percent": "10"},
            },
            {
                "name": "Dairy but not milk",
                "when": {"lines": {"categories": ["dairy"], "exclude_skus": ["MILK-1L"]}},
                "earn": {"currency": "STAMP", "amount": "1", "per": "line"},
            },
        ]
    )
    p, e, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    # categories or skus: both lines match the first rule
    assert earned(e) == ["17.98", "45.00"]
    # the second rule's only candidate line is excluded
    assert why(p, "dairy-but-not-milk") == "no line matches"


@pytest.mark.parametrize(
    ("cond", "fires"),
    [
        ({"min_quantity": "2"}, True),
        ({"min_quantity": "3"}, False),
        ({"min_amount": "179.80"}, True),
        ({"min_amount": "179.81"}, False),
    ],
)
def test_lines_condition_minimums(cond: dict[str, str], fires: bool) -> None:
    rules = program(
        [
            {
                "name": "Milk x2",
                "when": {"lines": {"skus": ["MILK-1L"], **cond}},
                "earn": {"currency": "STAMP", "amount": "1"},
            }
        ]
    )
    p, _, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    assert ("milk-x2" in fired(p)) is fires


@pytest.mark.parametrize(
    ("cond", "kw", "fires"),
    [
        ({"min_amount": "629.80"}, {}, True),
        ({"min_amount": "629.81"}, {}, False),
        ({"max_amount": "629.80"}, {}, True),
        ({"max_amount": "629.79"}, {}, False),
        ({"min_quantity": "3"}, {}, True),
        ({"min_quantity": "4"}, {}, False),
        ({"stores": ["msk-01"]}, {}, True),
        ({"stores": ["msk-02"]}, {}, False),
        ({"channels": ["online", "app"]}, {"channel": "app"}, True),
        ({"channels": ["online", "app"]}, {"channel": "pos"}, False),
        ({"partners": ["acme"]}, {"store": "p-1", "partner": "acme"}, True),
        ({"partners": ["acme"]}, {}, False),
    ],
)
def test_receipt_conditions(cond: dict[str, object], kw: dict[str, str], fires: bool) -> None:
    rules = program(
        [{"name": "Cond", "when": {"receipt": cond}, "earn": {"currency": "STAMP", "amount": "1"}}]
    )
    p, _, _ = run(rules, receipt(MILK, COFFEE, member=member(), **kw))  # type: ignore[arg-type]
    assert ("cond" in fired(p)) is fires


@pytest.mark.parametrize(
    ("cond", "who", "fires"),
    [
        ({"tiers": ["gold"]}, {"tier": "gold"}, True),
        ({"tiers": ["gold"]}, {"tier": "silver"}, False),
        ({"tags": ["student", "staff"]}, {"tags": frozenset({"staff"})}, True),
        ({"tags": ["student"]}, {"tags": frozenset({"staff"})}, False),
        # SAT is 2026-11-28: born 2008-11-28 is 18 that day, born 2008-11-29 still 17
        ({"min_age": 18}, {"birth_date": dt.date(2008, 11, 28)}, True),
        ({"min_age": 18}, {"birth_date": dt.date(2008, 11, 29)}, False),
        ({"max_age": 25}, {"birth_date": dt.date(2000, 11, 29)}, True),
        ({"max_age": 25}, {"birth_date": dt.date(2000, 11, 28)}, False),
        ({"min_age": 18}, {}, False),
        (
            {"birthday": {"days_before": 3, "days_after": 3}},
            {"birth_date": dt.date(1990, 12, 1)},
            True,
        ),
        ({"birthday": {"days_before": 2}}, {"birth_date": dt.date(1990, 12, 1)}, False),
        ({"birthday": {"days_after": 0}}, {"birth_date": dt.date(1990, 11, 28)}, True),
        ({"min_days_since_joining": 30}, {"joined_at": SAT - dt.timedelta(days=30)}, True),
        ({"min_days_since_joining": 30}, {"joined_at": SAT - dt.timedelta(days=29)}, False),
        ({"max_days_since_joining": 7}, {"joined_at": SAT - dt.timedelta(days=8)}, False),
        ({"first_purchase": True}, {"purchases_count": 0}, True),
        ({"first_purchase": True}, {"purchases_count": 1}, False),
        ({"first_purchase": False}, {"purchases_count": 0}, False),
        ({"min_purchases": 5}, {"purchases_count": 5}, True),
        ({"min_purchases": 5}, {"purchases_count": 4}, False),
        ({"max_purchases": 2}, {"purchases_count": 3}, False),
    ],
)
def test_member_conditions(cond: dict[str, object], who: dict[str, object], fires: bool) -> None:
    rules = program(
        [{"name": "Cond", "when": {"member": cond}, "earn": {"currency": "STAMP", "amount": "1"}}],
        tiers={
            "metric": "spend",
            "window": {"rolling_days": 365},
            "levels": [
                {"code": "silver", "name": "Silver", "threshold": "0"},
                {"code": "gold", "name": "Gold", "threshold": "1000"},
            ],
        },
    )
    p, _, _ = run(rules, receipt(MILK, member=member(**who)))
    assert ("cond" in fired(p)) is fires


def test_birthday_window_wraps_the_new_year() -> None:
    rules = program(
        [
            {
                "name": "Birthday",
                "when": {"member": {"birthday": {"days_before": 0, "days_after": 7}}},
                "reward": {"currency": "BONUS", "amount": "300"},
            }
        ]
    )
    jan3 = dt.datetime(2027, 1, 3, 12, tzinfo=MSK)
    _p, e, _ = run(rules, receipt(COFFEE, member=member(birth_date=dt.date(1985, 12, 30)), at=jan3))
    assert earned(e) == ["300.00"]


@pytest.mark.parametrize(
    ("cond", "at", "fires"),
    [
        ({"from": "2026-11-28", "to": "2026-11-29"}, SAT, True),
        ({"from": "2026-11-29"}, SAT, False),
        ({"to": "2026-11-27"}, SAT, False),
        # 23:30 UTC on Friday is already Saturday in Moscow: the programme's time zone counts
        ({"days_of_week": ["sat", "sun"]}, dt.datetime(2026, 11, 27, 21, 30, tzinfo=dt.UTC), True),
        ({"days_of_week": ["mon"]}, SAT, False),
        ({"hours": {"from": "10:00", "to": "12:00"}}, SAT, True),
        ({"hours": {"from": "08:00", "to": "10:00"}}, SAT, False),  # "to" is exclusive
        ({"hours": {"from": "22:00", "to": "02:00"}}, SAT.replace(hour=1), True),
        ({"hours": {"from": "22:00", "to": "02:00"}}, SAT.replace(hour=2), False),
    ],
)
def test_time_conditions_in_the_programme_time_zone(
    cond: dict[str, object], at: dt.datetime, fires: bool
) -> None:
    rules = program(
        [{"name": "Cond", "when": {"time": cond}, "earn": {"currency": "STAMP", "amount": "1"}}]
    )
    p, _, _ = run(rules, receipt(MILK, member=member(), at=at))
    assert ("cond" in fired(p)) is fires


def test_multipliers_apply_to_what_earn_rules_gave_and_compound() -> None:
    # given base earn, ×2 on dairy and ×3 on everything, with a gift that is not multiplied
    rules = program(
        [
            {"name": "x3 all", "multiply": {"factor": "3"}},
            {
                "name": "x2 dairy",
                "priority": 10,
                "when": {"lines": {"categories": ["dairy"]}},
                "multiply": {"factor": "2", "currency": "BONUS"},
            },
            {"name": "Gift", "reward": {"currency": "BONUS", "amount": "50"}},
            BASE,
        ]
    )
    _p, e, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    # then milk: 8.99 ×2 = 17.98, ×3 = 53.94 (+ its share of the gift); coffee 22.50 ×3
    gift = {a.key: a for a in e.applied}["gift"].amount
    assert gift == Decimal("50.00")
    assert [a.key for a in e.applied] == ["base-earn", "gift", "x2-dairy", "x3-all"]
    assert sum((Decimal(x) for x in earned(e)), Decimal(0)) == Decimal("53.94") + Decimal(
        "67.50"
    ) + Decimal("50.00")


def test_discount_percent_fixed_per_receipt_line_and_unit() -> None:
    cases = {
        "percent": ({"percent": "10"}, ["17.98", "45.00"]),
        "receipt": ({"amount": "100"}, ["28.55", "71.45"]),
        "line": ({"amount": "100", "per": "line"}, ["100.00", "100.00"]),
        "unit": ({"amount": "100", "per": "unit"}, ["179.80", "100.00"]),
    }
    for _, (d, expected) in cases.items():
        rules = program([{"name": "Off", "discount": d}])
        p, _, _ = run(rules, receipt(MILK, COFFEE, member=member()))
        assert [str(x) for x in p.line_discounts] == expected, d


def test_a_discount_never_exceeds_the_line() -> None:
    rules = program(
        [
            {"name": "Big", "discount": {"amount": "1000", "per": "line"}},
            {"name": "More", "discount": {"percent": "50"}},
        ]
    )
    p, _e, paid = run(rules, receipt(MILK, COFFEE, member=member()))
    assert p.line_discounts == [Decimal("179.80"), Decimal("450.00")]
    assert paid == [Decimal(0), Decimal(0)]
    assert why(p, "more").endswith("nothing to give on these lines")


def test_order_of_discounts_matters_and_follows_priority() -> None:
    # 10 % then 100 off, versus 100 off then 10 %
    first_percent = program(
        [
            {"name": "Percent", "priority": 2, "discount": {"percent": "10"}},
            {"name": "Fixed", "priority": 1, "discount": {"amount": "100"}},
        ]
    )
    first_fixed = program(
        [
            {"name": "Percent", "priority": 1, "discount": {"percent": "10"}},
            {"name": "Fixed", "priority": 2, "discount": {"amount": "100"}},
        ]
    )
    a, _, _ = run(first_percent, receipt(COFFEE, member=member()))
    b, _, _ = run(first_fixed, receipt(COFFEE, member=member()))
    assert a.line_discounts == [Decimal("145.00")]  # 45 + 100
    assert b.line_discounts == [Decimal("135.00")]  # 100 + 35


def test_equal_priority_follows_the_programme_order() -> None:
    rules = program(
        [
            {"name": "Fixed", "discount": {"amount": "100"}},
            {"name": "Percent", "discount": {"percent": "10"}},
        ]
    )
    p, _, _ = run(rules, receipt(COFFEE, member=member()))
    assert p.line_discounts == [Decimal("135.00")]
    assert [a.key for a in p.applied] == ["fixed", "percent"]


def test_personal_and_cumulative_discounts() -> None:
    rules = program(
        [
            {"name": "Personal", "discount": {"personal": True}},
            {
                "name": "Cumulative",
                "discount": {
                    "ladder": [
                        {"from_spend": "10000", "percent": "3"},
                        {"from_spend": "50000", "percent": "5"},
                    ]
                },
            },
        ]
    )
    p, _, _ = run(rules, receipt(COFFEE, member=member(personal_discount=Decimal("7"))))
    assert p.line_discounts == [Decimal("31.50")]
    assert why(p, "cumulative").startswith("lifetime spend 0 below")
    p, _, _ = run(rules, receipt(COFFEE, member=member(lifetime_spend=Decimal("50000"))))
    assert p.line_discounts == [Decimal("22.50")]
    assert why(p, "personal") == "the member has no personal discount"


def test_redeem_cap_and_exclusions() -> None:
    rules = program(
        [
            {"name": "Cap", "priority": 5, "redeem": {"currency": "BONUS", "max_share": "0.2"}},
            {"name": "Cap low", "redeem": {"currency": "BONUS", "max_share": "0.1"}},
            {
                "name": "Tobacco",
                "when": {"lines": {"categories": ["tobacco"]}},
                "exclude": {"earning": True, "redemption": True},
            },
            BASE,
        ]
    )
    cigs = line("CIGS", "200.00", "1", "tobacco")
    p, e, _ = run(rules, receipt(COFFEE, cigs, member=member()))
    # the higher priority cap wins; tobacco earns nothing and cannot be paid with points
    assert p.redeem_caps["BONUS"] == Decimal("0.2")
    assert why(p, "cap-low") == "a rule before it set this cap"
    assert p.no_redeem_lines == {1} and p.no_earn_lines == {1}
    assert earned(e) == ["22.50", "0"]


def test_caps_per_receipt_per_member_and_campaign_budget() -> None:
    rules = program(
        [
            {
                "name": "Capped",
                "earn": {"currency": "BONUS", "percent": "10"},
                "caps": {"per_receipt": "20", "per_member": {"amount": "50", "period": "month"}},
            },
            {
                "name": "Promo",
                "campaign": "spring",
                "earn": {"currency": "BONUS", "amount": "30"},
            },
        ],
        campaigns=[
            {"code": "spring", "name": "Spring", "budget": {"currency": "BONUS", "amount": "1000"}}
        ],
    )
    # per receipt: 62.98 cut to 20.00, split in proportion to what each line had
    _, e, _ = run(rules, receipt(MILK, COFFEE, member=member()))
    capped = {a.key: a for a in e.applied}["capped"]
    assert capped.amount == Decimal("20.00") and "capped at 20" in capped.reason
    # per member: 45 already given this month → 5 left
    _, e, _ = run(rules, receipt(MILK, member=member(usage={"capped": Decimal("45")})))
    assert {a.key: a.amount for a in e.applied}["capped"] == Decimal("5.00")
    # used up: the rule gives nothing and says why
    p, e, _ = run(rules, receipt(MILK, member=member(usage={"capped": Decimal("50")})))
    assert why(p, "capped") == "its cap or campaign budget is used up"
    # campaign budget: 985 spent of 1000 → 15 left; the spend is reported for the budget
    _, e, _ = run(rules, receipt(MILK, member=member(), spent={"spring": Decimal("985")}))
    assert {a.key: a.amount for a in e.applied}["promo"] == Decimal("15.00")
    assert e.campaign_spend == {"spring": Decimal("15.00")}


def test_campaign_schedule() -> None:
    rules = program(
        [{"name": "Weekend x2", "campaign": "wknd", "multiply": {"factor": "2"}}, BASE],
        campaigns=[
            {
                "code": "wknd",
                "name": "Weekend",
                "starts_at": "2026-11-01T00:00:00+03:00",
                "ends_at": "2026-12-01T00:00:00+03:00",
                "days_of_week": ["sat", "sun"],
            }
        ],
    )
    _, e, _ = run(rules, receipt(COFFEE, member=member()))
    assert earned(e) == ["45.00"]
    p, e, _ = run(rules, receipt(COFFEE, member=member(), at=SAT - dt.timedelta(days=1)))
    assert earned(e) == ["22.50"]
    assert why(p, "weekend-x2") == "campaign wknd runs on sat, sun only"
    p, _, _ = run(rules, receipt(COFFEE, member=member(), at=SAT + dt.timedelta(days=7)))
    assert why(p, "weekend-x2").startswith("campaign wknd ended at")


def test_exclusive_stops_later_rules_of_its_effect_only() -> None:
    rules = program(
        [
            {
                "name": "VIP",
                "priority": 9,
                "stacking": "exclusive",
                "earn": {"currency": "BONUS", "percent": "10"},
            },
            BASE,
            {"name": "Off", "discount": {"percent": "5"}},
        ]
    )
    p, e, _ = run(rules, receipt(COFFEE, member=member()))
    assert earned(e) == ["42.75"]  # 10 % of 427.50; base earn stopped
    assert why(p, "base-earn") == "exclusive rule vip fired first"
    assert p.line_discounts == [Decimal("22.50")]  # discounts are another effect


def test_best_of_keeps_only_the_rule_that_gives_most() -> None:
    rules = program(
        [
            {"name": "A", "stacking": "best_of", "group": "promo", "discount": {"percent": "10"}},
            {"name": "B", "stacking": "best_of", "group": "promo", "discount": {"amount": "50"}},
            {"name": "C", "stacking": "best_of", "group": "promo", "discount": {"amount": "20"}},
        ]
    )
    p, _, _ = run(rules, receipt(COFFEE, member=member()))
    assert p.line_discounts == [Decimal("50.00")]
    assert fired(p) == ["b"]
    assert why(p, "a") == "best_of: b gives more"


def test_tier_benefits_apply_after_the_rules() -> None:
    rules = program(
        [BASE],
        tiers={
            "metric": "spend",
            "window": {"rolling_days": 365},
            "levels": [
                {"code": "silver", "name": "Silver", "threshold": "0"},
                {
                    "code": "gold",
                    "name": "Gold",
                    "threshold": "1000",
                    "benefits": {"earn_multiplier": "1.5", "discount_percent": "3"},
                },
            ],
        },
    )
    p, e, _ = run(rules, receipt(COFFEE, member=member(tier="gold")))
    assert p.line_discounts == [Decimal("13.50")]
    assert earned(e) == ["32.73"]  # 5 % of 436.50 = 21.82, ×1.5 → + 10.91
    p, e, _ = run(rules, receipt(COFFEE, member=member(tier="silver")))
    assert p.line_discounts == [Decimal(0)] and earned(e) == ["22.50"]


def test_control_group_members_get_nothing_from_the_rules() -> None:
    rules = program([BASE, {"name": "Off", "discount": {"percent": "5"}}])
    p, e, _ = run(rules, receipt(COFFEE, member=member(control_group=True)))
    assert e.earned == {} and p.line_discounts == [Decimal(0)]
    assert why(p, "base-earn") == "the member is in the control group"
