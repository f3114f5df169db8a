"""The ``leaderboards:`` section: what it takes, what it refuses (naming the path), and its
published JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from scripts.json_schemas import text as schema_text

from kopilka.core.errors import Problem
from kopilka.program.service import parse_program
from kopilka.spec.leaderboards import leaderboards_json_schema
from tests.conftest import TEST_PROGRAM

DOC = Path(__file__).resolve().parents[2] / "docs" / "leaderboards.schema.json"
NAME = '{ru: "Рейтинг", en: "Board"}'


def errors_of(section: str) -> list[tuple[str, str]]:
    with pytest.raises(Problem) as caught:
        parse_program(TEST_PROGRAM + "leaderboards:\n" + section)
    return [(e["field"], e["code"]) for e in caught.value.errors or []]


def test_a_board_takes_its_defaults() -> None:
    spec = parse_program(
        TEST_PROGRAM + f"leaderboards:\n  - {{code: visits, name: {NAME}, metric: visits}}\n"
    )
    [board] = spec.leaderboards
    assert (board.period, board.per_store, board.size) == ("month", False, 100)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            f"  - {{code: p, name: {NAME}, metric: points_earned}}\n",
            [("leaderboards[0]", "value_error")],
        ),
        (
            f"  - {{code: p, name: {NAME}, metric: visits, currency: BONUS}}\n",
            [("leaderboards[0]", "value_error")],
        ),
        (
            f"  - {{code: c, name: {NAME}, metric: challenge}}\n",
            [("leaderboards[0]", "value_error")],
        ),
        (
            f"  - {{code: p, name: {NAME}, metric: points_earned, currency: GOLD}}\n",
            [("leaderboards[0].currency", "unknown_currency")],
        ),
        (
            f"  - {{code: a, name: {NAME}, metric: visits}}\n"
            f"  - {{code: a, name: {NAME}, metric: spent}}\n",
            [("leaderboards[1].code", "duplicate")],
        ),
        (
            f"  - {{code: a, name: {NAME}, metric: visits, period: year}}\n",
            [("leaderboards[0].period", "literal_error")],
        ),
        (
            f"  - {{code: a, name: {NAME}, metric: visits, size: 0}}\n",
            [("leaderboards[0].size", "greater_than_equal")],
        ),
        (
            f"  - {{code: Bad Code, name: {NAME}, metric: visits}}\n",
            [("leaderboards[0].code", "string_pattern_mismatch")],
        ),
    ],
)
def test_a_bad_board_is_refused_naming_the_path(
    section: str, expected: list[tuple[str, str]]
) -> None:
    assert errors_of(section) == expected


def test_the_published_json_schema_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_text(leaderboards_json_schema()), (
        "docs/leaderboards.schema.json is stale: run `python -m scripts.json_schemas`"
    )


def test_the_json_schema_takes_what_the_models_take() -> None:
    spec = parse_program(
        TEST_PROGRAM
        + "leaderboards:\n"
        + f"  - {{code: b, name: {NAME}, metric: points_earned, currency: BONUS, period: all}}\n"
        + f"  - {{code: c, name: {NAME}, metric: challenge, challenge: five-coffees}}\n"
        + "challenges:\n"
        + f"  - {{code: five-coffees, name: {NAME}, goal: {{count: purchases, target: 5}}}}\n"
    )
    exported: list[dict[str, Any]] = [b.model_dump(mode="json") for b in spec.leaderboards]
    validator = jsonschema_rs.validator_for(leaderboards_json_schema())
    assert validator.is_valid(exported)
    assert not validator.is_valid([{"code": "x", "metric": "visits"}])


def test_a_challenge_board_names_a_challenge_of_the_programme() -> None:
    # given a board of a challenge the programme does not have
    text = (
        TEST_PROGRAM
        + "leaderboards:\n"
        + f"  - {{code: c, name: {NAME}, metric: challenge, challenge: nowhere}}\n"
    )
    # when it is parsed, then the error names the board's challenge
    with pytest.raises(Problem) as e:
        parse_program(text)
    assert [(x["field"], x["code"]) for x in e.value.errors] == [
        ("leaderboards[0].challenge", "unknown_challenge")
    ]
