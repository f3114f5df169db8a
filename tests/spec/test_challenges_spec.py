"""The ``challenges:`` and ``badges:`` sections: the contract's form as written, the richer
language, errors naming their path (cross-section checks too), the export round trip and
the published JSON Schema."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from scripts.json_schemas import text as schema_text

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.program.service import apply_program, export_program, validate_program
from kopilka.spec.challenges import challenges_json_schema
from tests.conftest import TEST_PROGRAM

DOC = Path(__file__).resolve().parents[2] / "docs" / "challenges.schema.json"

# The contract's form, as written.
CONTRACT = """
challenges:
  - code: five-coffees
    name: {ru: "Пять кофе за неделю", en: "Five coffees a week"}
    goal: {count: purchases, target: 5, where: {lines: {categories: [coffee]}}}
    period: {every: week}
    reward: {currency: BONUS, amount: "100", badge: coffee-lover}
badges:
  - {code: coffee-lover, name: {ru: "Кофеман", en: "Coffee lover"}}
"""

RICH = """
challenges:
  - code: ladder
    name: {ru: "Лесенка", en: "Ladder"}
    goal: {count: purchases}
    period: {from: 2026-12-01, to: 2026-12-31}
    steps:
      - {target: 3, reward: {currency: BONUS, amount: "10"}}
      - {target: 5, reward: {currency: STAMP, amount: "2"}}
      - {target: 10, reward: {badge: regular, hold_days: 14}}
  - code: streak
    name: {ru: "Каждую неделю", en: "Every week"}
    goal: {count: paid, target: "500.00", where: {min_receipt: "100", stores: [msk-01]}}
    streak: {every: week, length: 4, grace: 1}
    reward: {coupon_pool: "Welcome 10%", hold_days: 7}
  - code: recycle
    name: {ru: "Сдай одежду", en: "Recycle clothes"}
    goal: {count: events, target: 2, where: {event_type: clothes_recycled}}
    period: {days: 30}
    join: opt_in
    audience: {tiers: [gold], tags: [eco]}
    reward: {currency: BONUS, amount: "50"}
badges:
  - code: regular
    name: {ru: "Завсегдатай", en: "Regular"}
    description: {ru: "Десять покупок", en: "Ten purchases"}
    image: img/badges/regular.svg
tiers:
  metric: purchases
  levels:
    - {code: base, name: Base, threshold: 0}
    - {code: gold, name: Gold, threshold: 10}
"""


def _doc(section: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(TEST_PROGRAM)
    doc.update(yaml.safe_load(section))
    return doc


def _errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(Problem) as caught:
        validate_program(doc)
    return [(e["field"], e["code"]) for e in caught.value.errors or []]


def test_the_contracts_form_reads_as_written() -> None:
    # given the contract's example / when validated
    spec = validate_program(_doc(CONTRACT))
    # then every key is read
    (c,) = spec.challenges
    assert c.code == "five-coffees"
    assert c.name.ru == "Пять кофе за неделю"
    assert c.goal.count == "purchases" and c.goal.target == Decimal(5)
    assert c.goal.where.lines is not None and c.goal.where.lines.categories == ["coffee"]
    assert c.period is not None and c.period.every == "week"
    assert c.reward is not None and c.reward.amount == Decimal("100")
    assert c.reward.badge == "coffee-lover" and c.reward.hold_days == 0
    assert c.join == "auto"
    assert [(b.code, b.name.en) for b in spec.badges] == [("coffee-lover", "Coffee lover")]


def test_the_richer_language_reads() -> None:
    spec = validate_program(_doc(RICH))
    ladder, streak, recycle = spec.challenges
    assert [t for t, _ in ladder.ladder()] == [Decimal(3), Decimal(5), Decimal(10)]
    assert ladder.final_target() == Decimal(10)
    assert streak.streak is not None and streak.final_target() == Decimal(4)
    assert streak.unit_target() == Decimal("500.00")
    assert recycle.period is not None and recycle.period.days == 30
    assert recycle.join == "opt_in"


def test_a_programme_without_the_sections_has_none() -> None:
    spec = validate_program(_doc("{}"))
    assert spec.challenges == [] and spec.badges == []


@pytest.mark.parametrize(
    ("patch", "field", "code"),
    [
        (
            {"reward": {"currency": "NOPE", "amount": "1"}},
            "challenges[0].reward.currency",
            "unknown_currency",
        ),
        (
            {"reward": {"currency": "STAMP", "amount": "1.5"}},
            "challenges[0].reward.amount",
            "precision",
        ),
        ({"reward": {"badge": "ghost"}}, "challenges[0].reward.badge", "unknown_badge"),
        (
            {"goal": {"count": "purchases", "target": 1, "where": {"stores": ["nowhere"]}}},
            "challenges[0].goal.where.stores[0]",
            "unknown_store",
        ),
        ({"audience": {"tiers": ["platinum"]}}, "challenges[0].audience.tiers[0]", "unknown_tier"),
    ],
)
def test_cross_section_errors_name_their_path(patch: dict[str, Any], field: str, code: str) -> None:
    doc = _doc(CONTRACT)
    doc["challenges"][0].update(patch)
    assert (field, code) in _errors(doc)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"goal": {"count": "visits", "target": 1}}, "challenges[0].goal.count"),
        ({"goal": {"count": "purchases", "target": 0}}, "challenges[0].goal.target"),
        ({"goal": {"count": "purchases", "target": "2.5"}}, "challenges[0].goal"),
        ({"goal": {"count": "events", "target": 1}}, "challenges[0].goal"),
        ({"period": {"every": "year"}}, "challenges[0].period.every"),
        ({"period": {"every": "week", "days": 3}}, "challenges[0].period"),
        ({"period": {"days": 3}}, "challenges[0]"),
        ({"reward": {"hold_days": 3}}, "challenges[0].reward"),
        ({"reward": {"currency": "BONUS"}}, "challenges[0].reward"),
        ({"code": "Five Coffees"}, "challenges[0].code"),
        ({"steps": [{"target": 5}, {"target": 3}], "reward": None}, "challenges[0]"),
        ({"surprise": 1}, "challenges[0].surprise"),
    ],
)
def test_shape_errors_name_their_path(patch: dict[str, Any], field: str) -> None:
    doc = _doc(CONTRACT)
    doc["challenges"][0].update(patch)
    fields = [f for f, _ in _errors(doc)]
    assert any(f == field for f in fields), fields


def test_repeated_codes_and_an_event_rules_badge_are_checked() -> None:
    doc = _doc(CONTRACT)
    doc["challenges"].append(dict(doc["challenges"][0]))
    doc["badges"].append(dict(doc["badges"][0]))
    doc["event_rules"] = [
        {"name": "Recycle", "event": "clothes_recycled", "reward": {"badge": "ghost"}}
    ]
    assert sorted(_errors(doc)) == [
        ("badges[1].code", "duplicate"),
        ("challenges[1].code", "duplicate"),
        ("event_rules[0].reward.badge", "unknown_badge"),
    ]


def test_an_event_rule_may_give_a_badge_alone() -> None:
    doc = _doc(CONTRACT)
    doc["event_rules"] = [
        {"name": "Recycle", "event": "clothes_recycled", "reward": {"badge": "coffee-lover"}}
    ]
    spec = validate_program(doc)
    assert spec.event_rules[0].reward.badge == "coffee-lover"


def test_the_sections_round_trip_through_export(db: Database) -> None:
    # given a programme with both sections applied
    spec = validate_program(_doc(RICH))
    with db.session() as session:
        apply_program(session, spec, actor="test")
        session.commit()
        # when exported and read back
        exported = yaml.safe_load(export_program(session))
    # then it is the same programme, and the sections match the published schema
    assert validate_program(exported) == spec
    section = {"challenges": exported["challenges"], "badges": exported["badges"]}
    assert jsonschema_rs.validator_for(challenges_json_schema()).is_valid(section)


def test_the_published_json_schema_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_text(challenges_json_schema()), (
        "docs/challenges.schema.json is stale: run `python -m scripts.json_schemas`"
    )


def test_the_json_schema_takes_the_contracts_form_and_refuses_unknown_keys() -> None:
    validator = jsonschema_rs.validator_for(challenges_json_schema())
    section = yaml.safe_load(CONTRACT)
    assert validator.is_valid(section)
    section["challenges"][0]["surprise"] = 1
    assert not validator.is_valid(section)
