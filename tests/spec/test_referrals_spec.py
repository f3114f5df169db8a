"""The ``referrals:`` section of the programme file: defaults, errors naming their path (in
the service and through ``PUT /api/v1/program``), amounts against a currency's precision,
the export round trip and the published JSON Schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts.json_schemas import text as schema_text

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.program.service import apply_program, export_program, parse_program, validate_program
from kopilka.spec.referrals import ReferralReward, ReferralsSpec, referrals_json_schema
from tests.conftest import TEST_PROGRAM

DOC = Path(__file__).resolve().parents[2] / "docs" / "referrals.schema.json"

# The design's example, as docs/referrals.md shows it.
FULL = """
friend_reward:   {currency: BONUS, amount: "200"}
referrer_reward: {coupon_pool: "Welcome 10%"}
qualifying:
  min_paid: "1000.00"
  within_days: 30
  channels: [pos, online]
  stores: [msk-01]
hold_days: 14
limits: {per_referrer_per_month: 10, per_referrer_total: 100}
from: 2026-01-01
to: 2026-12-31
bonus: {every: 5, reward: {currency: BONUS, amount: "1000"}}
review:
  auto_approve_after_days: null
fraud:
  max_friends_per_referrer_per_day: 5
  max_enrolments_per_device: 2
  device_window_hours: 24
  max_enrolments_per_cashier_per_hour: 10
  disposable_email_domains: [Throwaway.example]
"""
MINIMAL = "friend_reward: {currency: BONUS, amount: '200'}"


def _program(section: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(TEST_PROGRAM)
    doc["referrals"] = yaml.safe_load(section) if isinstance(section, str) else section
    return doc


def _text(section: Any) -> str:
    return yaml.safe_dump(_program(section), allow_unicode=True)


def _errors(section: Any) -> list[tuple[str, str]]:
    with pytest.raises(Problem) as info:
        parse_program(_text(section))
    assert info.value.status == 422
    assert info.value.code == "program_invalid"
    return [(e["field"], e["code"]) for e in info.value.errors or []]


def _with(path: str, value: Any, base: str = FULL) -> dict[str, Any]:
    """The full section with one key (``a.b.c``) set, or removed when ``value`` is ...."""
    section: dict[str, Any] = yaml.safe_load(base)
    *parents, last = path.split(".")
    node = section
    for p in parents:
        node = node.setdefault(p, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return section


# ---------------------------------------------------------------------------- valid sections


def test_the_full_section_reads_as_written() -> None:
    # given the design's example / when the programme is parsed
    spec = parse_program(_text(FULL)).referrals

    # then every key is read, amounts as Decimal, dates as dates
    assert spec is not None
    assert spec.friend_reward == ReferralReward.model_validate(
        {"currency": "BONUS", "amount": "200"}
    )
    assert spec.friend_reward.amount == Decimal("200")
    assert spec.referrer_reward is not None
    assert spec.referrer_reward.coupon_pool == "Welcome 10%"
    assert spec.referrer_reward.currency is None and spec.referrer_reward.amount is None
    assert spec.qualifying.min_paid == Decimal("1000.00")
    assert spec.qualifying.within_days == 30
    assert spec.qualifying.channels == ["pos", "online"]
    assert spec.qualifying.stores == ["msk-01"]
    assert spec.hold_days == 14
    assert spec.limits.per_referrer_per_month == 10
    assert spec.limits.per_referrer_total == 100
    assert spec.from_ == dt.date(2026, 1, 1)
    assert spec.to == dt.date(2026, 12, 31)
    assert spec.bonus is not None and spec.bonus.every == 5
    assert spec.bonus.reward.amount == Decimal("1000")
    assert spec.review.auto_approve_after_days is None
    assert spec.fraud.disposable_email_domains == ["throwaway.example"]  # lower-cased
    assert [at for at, _ in spec.rewards()] == [
        "referrals.friend_reward",
        "referrals.referrer_reward",
        "referrals.bonus.reward",
    ]


def test_a_minimal_section_takes_the_defaults() -> None:
    spec = parse_program(_text(MINIMAL)).referrals

    assert spec is not None
    assert spec.referrer_reward is None
    assert spec.qualifying.min_paid == Decimal("0")
    assert spec.qualifying.within_days == 30
    assert spec.qualifying.channels is None and spec.qualifying.stores is None
    assert spec.hold_days == 14
    assert spec.limits.per_referrer_per_month is None
    assert spec.limits.per_referrer_total is None
    assert spec.from_ is None and spec.to is None
    assert spec.bonus is None
    assert spec.review.auto_approve_after_days is None
    f = spec.fraud
    assert (
        f.max_friends_per_referrer_per_day,
        f.max_enrolments_per_device,
        f.device_window_hours,
        f.max_enrolments_per_cashier_per_hour,
        f.disposable_email_domains,
    ) == (5, 2, 24, 10, [])


def test_a_programme_without_the_section_has_none() -> None:
    assert parse_program(TEST_PROGRAM).referrals is None


def test_only_the_referrer_rewarded_and_edge_values() -> None:
    section = {
        "referrer_reward": {"currency": "STAMP", "amount": 3},
        "hold_days": 0,
        "from": "2026-03-01",
        "to": "2026-03-01",  # one day
        "review": {"auto_approve_after_days": 7},
    }
    spec = parse_program(_text(section)).referrals
    assert spec is not None and spec.friend_reward is None
    assert spec.hold_days == 0 and spec.from_ == spec.to == dt.date(2026, 3, 1)
    assert spec.review.auto_approve_after_days == 7


def test_the_section_is_frozen() -> None:
    spec = ReferralsSpec.model_validate(yaml.safe_load(MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        spec.hold_days = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------- invalid sections


STAMP_BONUS = FULL.replace('currency: BONUS, amount: "1000"', 'currency: STAMP, amount: "1"')
NOT_SET = ...


@pytest.mark.parametrize(
    "key,value,field,code",
    [
        # the section as a whole (field relative to ``referrals``; "" is the section)
        ("friend_reward", NOT_SET, "", "value_error"),  # neither reward
        ("bogus", 1, "bogus", "extra_forbidden"),
        ("from_", "2026-01-01", "from_", "extra_forbidden"),  # the alias only
        ("from", "2026-13-01", "from", "date_from_datetime_parsing"),
        ("to", "2025-12-31", "to", "value_error"),  # before from
        ("hold_days", -1, "hold_days", "greater_than_equal"),
        ("hold_days", 366, "hold_days", "less_than_equal"),
        # rewards
        ("friend_reward.percent", "5", "friend_reward.percent", "extra_forbidden"),
        ("friend_reward.coupon_pool", "X", "friend_reward", "value_error"),  # both kinds
        ("friend_reward.amount", NOT_SET, "friend_reward", "value_error"),
        ("friend_reward.currency", NOT_SET, "friend_reward", "value_error"),
        ("friend_reward", {}, "friend_reward", "value_error"),
        ("referrer_reward.coupon_pool", "", "referrer_reward.coupon_pool", "string_too_short"),
        ("friend_reward.amount", "0", "friend_reward.amount", "greater_than"),
        ("friend_reward.amount", "-5", "friend_reward.amount", "greater_than"),
        ("friend_reward.amount", "NaN", "friend_reward.amount", "finite_number"),
        ("friend_reward.amount", "1e13", "friend_reward.amount", "less_than"),
        ("friend_reward.amount", "0.00001", "friend_reward.amount", "decimal_max_places"),
        ("friend_reward.currency", "NOPE", "friend_reward.currency", "unknown_currency"),
        ("friend_reward.amount", "200.001", "friend_reward.amount", "precision"),
        ("bonus.reward.currency", "RUB", "bonus.reward.currency", "unknown_currency"),
        ("bonus.every", 0, "bonus.every", "greater_than_equal"),
        ("bonus.reward", NOT_SET, "bonus.reward", "missing"),
        # qualifying
        ("qualifying.min_paid", "-1", "qualifying.min_paid", "greater_than_equal"),
        ("qualifying.min_paid", "10.005", "qualifying.min_paid", "decimal_max_places"),
        ("qualifying.min_paid", "ten", "qualifying.min_paid", "decimal_parsing"),
        ("qualifying.within_days", 0, "qualifying.within_days", "greater_than_equal"),
        ("qualifying.channels", [], "qualifying.channels", "too_short"),
        ("qualifying.channels", ["pos", "fax"], "qualifying.channels[1]", "literal_error"),
        ("qualifying.stores", ["msk-01", "nowhere"], "qualifying.stores[1]", "unknown_store"),
        ("qualifying.stores", ["Bad Store"], "qualifying.stores[0]", "string_pattern_mismatch"),
        # limits, review, fraud
        ("limits.per_referrer_per_month", 0, "limits.per_referrer_per_month", "greater_than_equal"),
        ("limits.per_referrer_total", "many", "limits.per_referrer_total", "int_parsing"),
        ("limits.per_day", 1, "limits.per_day", "extra_forbidden"),
        (
            "review.auto_approve_after_days",
            0,
            "review.auto_approve_after_days",
            "greater_than_equal",
        ),
        ("fraud.device_window_hours", 0, "fraud.device_window_hours", "greater_than_equal"),
        (
            "fraud.max_enrolments_per_device",
            0,
            "fraud.max_enrolments_per_device",
            "greater_than_equal",
        ),
        (
            "fraud.max_friends_per_referrer_per_day",
            None,
            "fraud.max_friends_per_referrer_per_day",
            "int_type",
        ),
        (
            "fraud.disposable_email_domains",
            ["ok.example", "not a domain"],
            "fraud.disposable_email_domains[1]",
            "string_pattern_mismatch",
        ),
        (
            "fraud.disposable_email_domains",
            ["localhost"],
            "fraud.disposable_email_domains[0]",
            "string_pattern_mismatch",
        ),
        ("fraud.block", True, "fraud.block", "extra_forbidden"),
    ],
)
def test_each_error_names_its_path(key: str, value: Any, field: str, code: str) -> None:
    # given the full section with one key changed (or removed); the minimal one for
    # "neither reward"
    section = _with(
        key, value, base=MINIMAL if key == "friend_reward" and value is NOT_SET else FULL
    )

    # then the one error names the path under ``referrals``
    assert _errors(section) == [(f"referrals.{field}" if field else "referrals", code)]


def test_more_decimal_places_than_a_whole_number_currency() -> None:
    assert _errors(_with("bonus.reward.amount", "0.5", base=STAMP_BONUS)) == [
        ("referrals.bonus.reward.amount", "precision")
    ]


def test_the_section_must_be_a_mapping() -> None:
    assert _errors("[]") == [("referrals", "model_type")]


def test_cross_section_errors_are_all_named_at_once() -> None:
    section = {
        "friend_reward": {"currency": "NOPE", "amount": "1"},
        "referrer_reward": {"currency": "STAMP", "amount": "1.5"},
        "qualifying": {"stores": ["msk-01", "gone"]},
        "bonus": {"every": 3, "reward": {"currency": "BONUS", "amount": "0.001"}},
    }
    assert _errors(section) == [
        ("referrals.friend_reward.currency", "unknown_currency"),
        ("referrals.referrer_reward.amount", "precision"),
        ("referrals.bonus.reward.amount", "precision"),
        ("referrals.qualifying.stores[1]", "unknown_store"),
    ]


def test_the_api_answers_422_naming_the_path(client: TestClient, admin: dict[str, str]) -> None:
    # given a programme whose referral reward has more decimal places than its currency
    body = _text(_with("friend_reward.amount", "200.005")).encode()

    # when it is applied over the API
    r = client.put("/api/v1/program", content=body, headers=admin)

    # then 422 program_invalid names the field, and nothing is applied
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "program_invalid"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("referrals.friend_reward.amount", "precision")
    ]
    assert client.get("/api/v1/program", headers=admin).status_code == 404

    # and a pydantic-level error is named the same way (the alias, not the field's name)
    r = client.put("/api/v1/program", content=_text(_with("from", "soon")).encode(), headers=admin)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["referrals.from"]

    # and the full section applies
    r = client.put("/api/v1/program", content=_text(FULL).encode(), headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True


def test_the_section_round_trips_through_export(db: Database) -> None:
    spec = parse_program(_text(FULL))
    with db.session() as s:
        apply_program(s, spec)
        exported = export_program(s)
        assert "from: '2026-01-01'" in exported and "from_" not in exported
        # and the exported section (every key written, unused ones null) fits the schema
        section = yaml.safe_load(exported)["referrals"]
        assert section["friend_reward"]["coupon_pool"] is None
        assert jsonschema_rs.validator_for(referrals_json_schema()).is_valid({"referrals": section})
        again = parse_program(exported)
        assert again == spec
        assert not apply_program(s, again).changed
        s.commit()


# ---------------------------------------------------------------------------- amounts


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    precision=st.integers(min_value=0, max_value=4),
    units=st.integers(min_value=1, max_value=10**12),
    places=st.integers(min_value=0, max_value=4),
    role=st.sampled_from(["friend_reward", "referrer_reward", "bonus"]),
)
def test_an_amount_is_accepted_exactly_when_it_fits_the_precision(
    precision: int, units: int, places: int, role: str
) -> None:
    # given a currency of ``precision`` places and a reward of ``units`` × 10^-places
    amount = Decimal(units).scaleb(-places)
    doc = _program(MINIMAL)
    doc["currencies"].append({"code": "PTS", "name": "Points", "precision": precision})
    reward = {"currency": "PTS", "amount": str(amount)}
    at = {"bonus": "referrals.bonus.reward"}.get(role, f"referrals.{role}")
    doc["referrals"] = (
        {**doc["referrals"], "bonus": {"every": 2, "reward": reward}}
        if role == "bonus"
        else {**doc["referrals"], role: reward}
    )
    # by value: trailing zeros do not count ("1.50" fits one place)
    fits = amount == amount.quantize(Decimal(1).scaleb(-precision))

    # when the programme is validated
    try:
        spec = validate_program(doc)
    except Problem as exc:
        # then it is refused only for its precision, naming the amount's path
        assert not fits
        assert [(e["field"], e["code"]) for e in exc.errors or []] == [
            (f"{at}.amount", "precision")
        ]
    else:
        # then it is accepted exactly, never rounded
        assert fits
        assert spec.referrals is not None
        given = dict(spec.referrals.rewards())[at]
        assert given.amount == amount and str(given.amount) == str(amount)


# ---------------------------------------------------------------------------- JSON Schema


def test_the_published_json_schema_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_text(referrals_json_schema()), (
        "docs/referrals.schema.json is stale: run `python -m scripts.json_schemas` "
        "(see docs/referrals.md)"
    )


def test_the_json_schema_takes_what_the_models_take() -> None:
    validator = jsonschema_rs.validator_for(referrals_json_schema())

    def ok(section: Any) -> bool:
        data = yaml.safe_load(section) if isinstance(section, str) else section
        return bool(validator.is_valid({"referrals": _jsonable(data)}))

    assert ok(FULL) and ok(MINIMAL) and ok({"referrer_reward": {"coupon_pool": "x"}})
    assert not ok(_with("bogus", 1))
    assert not ok({"friend_reward": {"currency": "BONUS", "amount": "1", "coupon_pool": "x"}})
    assert not ok({"friend_reward": {"currency": "BONUS", "amount": None}})
    assert not ok({"friend_reward": {"coupon_pool": None}})
    assert not ok(_with("friend_reward.coupon_pool", "x"))  # both kinds of reward
    assert not ok(_with("friend_reward.amount", ...))  # currency alone
    assert not ok(_with("friend_reward", {}))
    assert not ok(_with("hold_days", 400))
    assert not ok(_with("qualifying.channels", ["fax"]))


def _jsonable(value: Any) -> Any:
    """YAML reads dates as dates; a JSON document has them as strings."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
