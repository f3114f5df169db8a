"""The ``tiers:`` section of the programme file: validation with paths, round trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.program.service import apply_program, export_program, parse_program
from tests.conftest import DEMO_PROGRAM, TEST_PROGRAM
from tests.tiers.conftest import TIERS, program_text


def _errors(text: str) -> list[dict[str, Any]]:
    with pytest.raises(Problem) as info:
        parse_program(text)
    assert info.value.status == 422
    assert info.value.code == "program_invalid"
    return list(info.value.errors or [])


def _levels(*thresholds: str, codes: tuple[str, ...] = ("silver", "gold", "platinum")) -> list:
    return [
        {"code": c, "name": c.title(), "threshold": t}
        for c, t in zip(codes, thresholds, strict=True)
    ]


def test_the_tiers_section_parses_with_its_benefits() -> None:
    # given the programme with three levels
    spec = parse_program(program_text())
    # then the levels, thresholds and benefits are read as decimals
    assert spec.tiers is not None
    assert [lv.code for lv in spec.tiers.levels] == ["silver", "gold", "platinum"]
    assert spec.tiers.levels[1].threshold == Decimal("30000")
    assert spec.tiers.levels[1].benefits.earn_multiplier == Decimal("1")
    # benefits left out are neutral
    assert spec.tiers.levels[2].benefits.earn_multiplier == Decimal("1")
    assert spec.tiers.levels[2].benefits.discount_percent == Decimal("0")
    assert spec.tiers.window.rolling_days == 365
    assert spec.tiers.grace_days == 30
    # and a programme without tiers has none
    assert parse_program(TEST_PROGRAM).tiers is None


def test_the_demo_programme_has_three_levels_by_spend() -> None:
    spec = parse_program(DEMO_PROGRAM.read_text(encoding="utf-8"))
    assert spec.tiers is not None
    assert spec.tiers.metric == "spend"
    assert spec.tiers.window.rolling_days == 365
    assert [(lv.code, str(lv.threshold)) for lv in spec.tiers.levels] == [
        ("silver", "0"),
        ("gold", "30000"),
        ("platinum", "100000"),
    ]
    assert [
        (lv.benefits.earn_multiplier, lv.benefits.discount_percent) for lv in spec.tiers.levels
    ] == [
        (Decimal("1"), Decimal("0")),
        (Decimal("1.5"), Decimal("3")),
        (Decimal("2"), Decimal("5")),
    ]


@pytest.mark.parametrize(
    "changes,field,code",
    [
        ({"levels": _levels("0", "100", "100")}, "tiers.levels[2].threshold", "not_ascending"),
        ({"levels": _levels("0", "500", "100")}, "tiers.levels[2].threshold", "not_ascending"),
        (
            {"levels": _levels("0", "1", "2", codes=("silver", "gold", "silver"))},
            "tiers.levels[2].code",
            "duplicate",
        ),
        ({"metric": "points"}, "tiers.currency", "missing"),
        ({"metric": "points", "currency": "NOPE"}, "tiers.currency", "unknown"),
        ({"currency": "BONUS"}, "tiers.currency", "unexpected"),
        (
            {"metric": "purchases", "levels": _levels("0", "1.5", "3")},
            "tiers.levels[1].threshold",
            "integer",
        ),
        ({"metric": "visits"}, "tiers.metric", "literal_error"),
        ({"window": {"rolling_days": 365, "calendar": "year"}}, "tiers.window", "value_error"),
        ({"window": {"calendar": "week"}}, "tiers.window.calendar", "literal_error"),
        ({"levels": []}, "tiers.levels", "too_short"),
        (
            {"levels": [{"code": "Gold!", "name": "G", "threshold": "0"}]},
            "tiers.levels[0].code",
            "string_pattern_mismatch",
        ),
        (
            {"levels": [{"code": "gold", "name": "G", "threshold": "-1"}]},
            "tiers.levels[0].threshold",
            "greater_than_equal",
        ),
        (
            {
                "levels": [
                    {"code": "gold", "name": "G", "threshold": "0", "benefits": {"cashback": "1"}}
                ]
            },
            "tiers.levels[0].benefits.cashback",
            "extra_forbidden",
        ),
        ({"grace_days": -1}, "tiers.grace_days", "greater_than_equal"),
        ({"colour": "gold"}, "tiers.colour", "extra_forbidden"),
    ],
)
def test_invalid_tiers_name_the_path(changes: dict[str, Any], field: str, code: str) -> None:
    # given a tiers section with one mistake
    errors = _errors(program_text(**changes))
    # then the error names its path and what is wrong
    assert [(e["field"], e["code"]) for e in errors] == [(field, code)]


def test_a_points_metric_with_a_known_currency_is_valid() -> None:
    spec = parse_program(program_text(metric="points", currency="BONUS"))
    assert spec.tiers is not None and spec.tiers.currency == "BONUS"


def test_export_then_apply_changes_nothing(db: Database) -> None:
    # given the programme with tiers applied
    with db.session() as s:
        first = apply_program(s, parse_program(program_text(window={"calendar": "quarter"})))
        s.commit()
        # when it is exported and applied again
        exported = export_program(s)
        again = apply_program(s, parse_program(exported))
        s.commit()
    # then nothing changed and the section reads the same
    assert first.changed and not again.changed
    tiers = yaml.safe_load(exported)["tiers"]
    assert tiers["window"] == {"rolling_days": None, "calendar": "quarter"}
    assert tiers["levels"][1] == {
        "code": "gold",
        "name": "Золото",
        "threshold": "30000",
        "benefits": {"earn_multiplier": "1", "discount_percent": "0"},
    }
    assert [lv["code"] for lv in tiers["levels"]] == [lv["code"] for lv in TIERS["levels"]]
