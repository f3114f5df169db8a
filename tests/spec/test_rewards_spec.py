"""The ``rewards:`` section of the programme file: the contract's form as written, the
checks against the rest of the programme (errors naming the path), the export's round
trip, and the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from scripts.json_schemas import text as schema_text

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.program.service import apply_program, export_program, parse_program
from kopilka.spec.rewards import rewards_json_schema
from tests.conftest import TEST_PROGRAM

DOC = Path(__file__).resolve().parents[2] / "docs" / "rewards.schema.json"

CONTRACT = """
rewards:
  - code: towel-1r
    name: {ru: "Полотенце за 1 ₽", en: "Towel for 1 RUB"}
    cost: {currency: STAMP, amount: "30"}
    gives: {sku: TOWEL-01, price: "1.00"}   # or {coupon_pool: CODE}
"""

FULL = """
rewards:
  - code: towel-1r
    name: {ru: "Полотенце за 1 ₽", en: "Towel for 1 RUB"}
    description: {ru: "Махровое"}
    image: /static/towel.png
    cost: {currency: STAMP, amount: "30"}
    gives: {sku: TOWEL-01, price: "1.00"}
    stock: 500
    available: {from: 2026-09-01, to: 2027-03-31}
    per_member: 3
  - code: coffee
    name: {ru: "Кофе"}
    cost: {currency: BONUS, amount: "99.50"}
    gives: {coupon_pool: FREE-COFFEE}
"""


def _errors(section: str) -> list[tuple[str, str]]:
    with pytest.raises(Problem) as exc:
        parse_program(TEST_PROGRAM + section)
    return [(e["field"], e["code"]) for e in exc.value.errors or []]


def test_the_contract_form_works_as_written() -> None:
    spec = parse_program(TEST_PROGRAM + CONTRACT)
    [towel] = spec.rewards
    assert (towel.code, towel.cost.currency, str(towel.cost.amount)) == ("towel-1r", "STAMP", "30")
    assert (towel.gives.sku, str(towel.gives.price), towel.gives.at_till) == (
        "TOWEL-01",
        "1.00",
        True,
    )
    assert towel.stock is None and towel.per_member is None
    assert spec.reward("towel-1r") is towel and spec.reward("nope") is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (CONTRACT.replace("STAMP", "STICKER"), [("rewards[0].cost.currency", "unknown_currency")]),
        (CONTRACT.replace('"30"', '"30.5"'), [("rewards[0].cost.amount", "precision")]),
        (
            CONTRACT + CONTRACT.replace("rewards:\n", ""),
            [("rewards[1].code", "duplicate")],
        ),
    ],
)
def test_checks_across_sections_name_the_path(
    section: str, expected: list[tuple[str, str]]
) -> None:
    assert _errors(section) == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('{sku: TOWEL-01, price: "1.00"}', "{sku: TOWEL-01, coupon_pool: X}"), "rewards[0].gives"),
        (('{sku: TOWEL-01, price: "1.00"}', "{sku: TOWEL-01}"), "rewards[0].gives"),
        (("code: towel-1r", "code: Towel"), "rewards[0].code"),
        (
            ('cost: {currency: STAMP, amount: "30"}', 'cost: {currency: STAMP, amount: "0"}'),
            "rewards[0].cost.amount",
        ),
    ],
)
def test_bad_forms_are_refused_naming_the_field(change: tuple[str, str], field: str) -> None:
    assert [f for f, _ in _errors(CONTRACT.replace(*change))] == [field]


def test_dates_in_order() -> None:
    bad = FULL.replace("to: 2027-03-31", "to: 2026-08-31")
    assert [f for f, _ in _errors(bad)] == ["rewards[0].available"]


def test_the_section_round_trips_through_export(db: Database) -> None:
    spec = parse_program(TEST_PROGRAM + FULL)
    with db.session() as s:
        apply_program(s, spec)
        exported = export_program(s)
        section = yaml.safe_load(exported)["rewards"]
        assert section[0]["available"] == {"from": "2026-09-01", "to": "2027-03-31"}
        assert jsonschema_rs.validator_for(rewards_json_schema()).is_valid({"rewards": section})
        assert parse_program(exported) == spec
        s.commit()


def test_the_json_schema_takes_the_contract_form() -> None:
    validator = jsonschema_rs.validator_for(rewards_json_schema())
    doc: Any = json.loads(json.dumps(yaml.safe_load(FULL), default=str))  # dates as text
    assert validator.is_valid(doc)
    doc["rewards"][0]["colour"] = "red"
    assert not validator.is_valid(doc)


def test_the_published_json_schema_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_text(rewards_json_schema()), (
        "docs/rewards.schema.json is stale: run `python -m scripts.json_schemas`"
    )
