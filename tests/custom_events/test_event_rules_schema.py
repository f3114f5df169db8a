"""The ``event_types``/``event_rules`` sections of the programme file, and the pure logic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kopilka.core.db import Base, Database
from kopilka.core.errors import Problem
from kopilka.custom_events import evaluate
from kopilka.program.service import apply_program, export_program, parse_program
from kopilka.spec.custom_events import PointsReward
from tests.custom_events.conftest import program_text

RULE: dict[str, Any] = {
    "name": "Eco",
    "event": "clothes_recycled",
    "reward": {"points": {"currency": "BONUS", "amount": "50", "per_property": "kg"}},
}


def _fields(rules: list[dict[str, Any]], types: list[str] | None = None) -> list[str]:
    with pytest.raises(Problem) as info:
        parse_program(program_text(rules, types))
    assert info.value.code == "program_invalid"
    return [e["field"] for e in info.value.errors or []]


def _with(**changes: Any) -> dict[str, Any]:
    rule = yaml.safe_load(yaml.safe_dump(RULE))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = rule
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return rule


@pytest.mark.parametrize(
    "rule,field",
    [
        (_with(reward__points__currency="NOPE"), "event_rules[0].reward.points.currency"),
        (_with(reward__points__amount="0.001"), "event_rules[0].reward.points.amount"),
        (_with(reward__points__amount="-5"), "event_rules[0].reward.points.amount"),
        (_with(reward__points__max="-1"), "event_rules[0].reward.points.max"),
        (_with(reward__points__max="10.005"), "event_rules[0].reward.points.max"),
        (_with(reward={}), "event_rules[0].reward"),
        (
            _with(reward__points__per_property=None, reward__points__max="5"),
            "event_rules[0].reward.points",
        ),
        (_with(event="Bad Type"), "event_rules[0].event"),
        (_with(bogus=1), "event_rules[0].bogus"),
        (_with(limits={"per_day": 0}), "event_rules[0].limits.per_day"),
        (_with(limits={"per_hour": 1}), "event_rules[0].limits.per_hour"),
        (_with(when={"properties": {"kg": {}}}), "event_rules[0].when.properties.kg"),
        (
            _with(when={"properties": {"kg": {"min": "5", "max": "1"}}}),
            "event_rules[0].when.properties.kg",
        ),
        (
            _with(when={"period": {"from": "2026-12-31", "to": "2026-01-01"}}),
            "event_rules[0].when.period",
        ),
        (_with(when={"member": {"tiers": []}}), "event_rules[0].when.member.tiers"),
    ],
)
def test_invalid_event_rules_name_the_path(rule: dict[str, Any], field: str) -> None:
    assert field in _fields([rule], types=None)


def test_rule_events_must_be_known_types_and_names_unique() -> None:
    got = _fields([RULE, {**RULE, "event": "jar_returned"}], types=["clothes_recycled"])
    assert got == ["event_rules[1].name", "event_rules[1].event"]
    assert _fields([RULE], types=["clothes_recycled", "clothes_recycled"]) == ["event_types[1]"]


def test_precision_zero_currency_takes_whole_points() -> None:
    rule = _with(reward__points__currency="STAMP", reward__points__amount="1.5")
    assert _fields([rule]) == ["event_rules[0].reward.points.amount"]


def test_event_rules_round_trip_through_export(db: Database) -> None:
    rule = {
        **RULE,
        "when": {
            "properties": {"kg": {"min": "1"}, "sorted": {"equals": True}, "n": {"equals": 1.5}},
            "member": {"tiers": ["gold"]},
            "period": {"from": dt.date(2026, 1, 1), "to": dt.date(2026, 12, 31)},
        },
        "limits": {"per_week": 1},
    }
    spec = parse_program(program_text([rule]))
    assert spec.event_rules[0].when.period is not None
    assert spec.event_rules[0].when.period.from_ == dt.date(2026, 1, 1)
    assert spec.event_rules[0].when.properties["n"].equals == "1.5"
    with db.session() as s:
        apply_program(s, spec)
        exported = export_program(s)
        assert "from: '2026-01-01'" in exported
        again = parse_program(exported)
        assert again == spec
        assert not apply_program(s, again).changed


def test_periods_in_moscow() -> None:
    at = dt.datetime(2026, 11, 30, 21, 1, tzinfo=dt.UTC)  # 00:01 on 1 December in Moscow
    p = evaluate.periods(at, "Europe/Moscow")
    assert p["per_day"] == (
        dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.UTC),
    )
    assert p["per_week"] == (  # Monday 30 November
        dt.datetime(2026, 11, 29, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 21, 0, tzinfo=dt.UTC),
    )
    assert p["per_month"] == (
        dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 21, 0, tzinfo=dt.UTC),
    )


def test_points_due() -> None:
    reward = PointsReward(
        currency="BONUS", amount=Decimal("50"), per_property="kg", max=Decimal("500")
    )
    assert evaluate.points_due(reward, {"kg": "0.0199"}, 2).amount == Decimal("0.99")
    assert evaluate.points_due(reward, {"kg": 11}, 2).amount == Decimal("500")
    assert evaluate.points_due(reward, {}, 2).reason == "property_missing"
    assert evaluate.points_due(reward, {"kg": "0.0001"}, 2).reason == "nothing_to_grant"
    assert evaluate.number(True) is None and evaluate.number("1e3") == Decimal("1000")
    assert evaluate.points_due(
        reward.model_copy(update={"max": None}), {"kg": "9e12"}, 2
    ).reason == ("amount_out_of_range")
    assert evaluate.number("NaN") is None and evaluate.number(2.675) == Decimal("2.675")


def test_the_migration_matches_the_models(db: Database) -> None:
    # given the database migrated by the test fixtures
    ours = {"activities", "activity_rewards"}
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    # then Alembic finds nothing to change in the custom events' tables
    def table_of(d: Any) -> str | None:
        item = d[0] if isinstance(d, list) else d
        for obj in item[1:]:
            name = getattr(obj, "name", None)
            table = getattr(obj, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if isinstance(obj, str) and obj in ours:
                return obj
            if name in ours:
                return str(name)
        return None

    assert [d for d in diff if table_of(d) in ours] == []
