"""The programme file: validation with paths, idempotent apply, export round trip, API."""

from __future__ import annotations

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.program.models import Currency, ProgramVersion, Store
from kopilka.program.service import apply_program, export_program, parse_program
from tests.conftest import DEMO_PROGRAM, TEST_PROGRAM


def _errors(text: str) -> list[str]:
    with pytest.raises(Problem) as info:
        parse_program(text)
    assert info.value.code == "program_invalid"
    assert info.value.status == 422
    return [e["field"] for e in info.value.errors or []]


def _doc(**changes: object) -> str:
    doc = yaml.safe_load(TEST_PROGRAM)
    doc.update(changes)
    return yaml.safe_dump(doc, allow_unicode=True)


def test_contract_example_and_demo_parse() -> None:
    example = """
name: Demo
base_currency: RUB
timezone: Europe/Moscow
default_phone_region: RU
currencies:
  - code: BONUS
    name: Бонусные рубли
    precision: 2
    value: "1.00"
    pending_days: 14
    expires_after_days: 365
    redeem_max_share: "0.99"
rules:
  - name: Base earn
    earn: {currency: BONUS, percent: "5"}
"""
    spec = parse_program(example)
    assert spec.currencies[0].pending_days == 14
    assert str(spec.currencies[0].redeem_max_share) == "0.99"
    assert parse_program(DEMO_PROGRAM.read_text()).name == "Kopilka Demo"


@pytest.mark.parametrize(
    "text,fields",
    [
        ("name: [unclosed", ["$"]),
        ("- a list", ["$"]),
        (_doc(timezone="Mars/Olympus"), ["timezone"]),
        (_doc(default_phone_region="XX"), ["default_phone_region"]),
        (_doc(colour="red"), ["colour"]),
        (_doc(currencies=[]), ["currencies"]),
        (
            _doc(currencies=[{"code": "BONUS", "name": "B", "precision": 7}]),
            ["currencies[0].precision"],
        ),
        (
            _doc(currencies=[{"code": "BONUS", "name": "B", "redeem_max_share": "1.5"}]),
            ["currencies[0].redeem_max_share"],
        ),
        (
            _doc(currencies=[{"code": "BONUS", "name": "B", "pending": 3}]),
            ["currencies[0].pending"],
        ),
        (
            _doc(currencies=[{"code": "B", "name": "x"}, {"code": "B", "name": "y"}]),
            ["currencies[0].code", "currencies[1].code"],
        ),
        (
            _doc(currencies=[{"code": "BONUS", "name": "B", "adjust_approval_above": "0"}]),
            ["currencies[0].adjust_approval_above"],
        ),
        (
            _doc(
                currencies=[
                    {"code": "BONUS", "name": "B", "adjust_approval_above": "10000000000000"}
                ]
            ),
            ["currencies[0].adjust_approval_above"],
        ),
        (
            _doc(
                currencies=[
                    {"code": "STAMP", "name": "S", "precision": 0},
                    {"code": "BONUS", "name": "B", "precision": 0, "adjust_approval_above": "0.5"},
                ]
            ),
            ["currencies[1].adjust_approval_above"],
        ),
        (_doc(stores=[{"code": "a", "name": "A"}, {"code": "a", "name": "B"}]), ["stores"]),
        (
            _doc(rules=[{"name": "x", "earn": {"currency": "NOPE", "percent": "5"}}]),
            ["rules[0].earn.currency"],
        ),
        (
            _doc(rules=[{"name": "x", "earn": {"currency": "BONUS", "percent": "-5"}}]),
            ["rules[0].earn.percent"],
        ),
        (
            _doc(rules=[{"name": "x", "earn": {"currency": "BONUS", "percent": "5"}, "bogus": 1}]),
            ["rules[0].bogus"],
        ),
    ],
)
def test_invalid_files_name_the_path(text: str, fields: list[str]) -> None:
    got = _errors(text)
    for f in fields:
        assert any(g == f or g.startswith(f) for g in got), (f, got)


def test_apply_is_idempotent_and_versions_changes(db: Database) -> None:
    spec = parse_program(TEST_PROGRAM)
    with db.session() as s:
        first = apply_program(s, spec)
        s.commit()
        again = apply_program(s, parse_program(TEST_PROGRAM))
        s.commit()
        assert first.changed and first.version == 1
        assert not again.changed and again.version == 1
        assert s.scalar(select(func.count()).select_from(ProgramVersion)) == 1
        changed = apply_program(s, parse_program(_doc(name="Renamed")))
        s.commit()
        assert changed.changed and changed.version == 2


def test_removed_currency_and_store_are_deactivated_not_deleted(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(TEST_PROGRAM))
        doc = yaml.safe_load(TEST_PROGRAM)
        doc["currencies"] = doc["currencies"][:1]
        doc["stores"] = doc["stores"][:1]
        apply_program(s, parse_program(yaml.safe_dump(doc, allow_unicode=True)))
        s.commit()
        assert {c.code: c.active for c in s.scalars(select(Currency))} == {
            "BONUS": True,
            "STAMP": False,
        }
        assert {x.code: x.active for x in s.scalars(select(Store))} == {
            "msk-01": True,
            "msk-02": False,
            "p-store": False,
        }


def test_precision_cannot_change(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(TEST_PROGRAM))
        s.commit()
        doc = yaml.safe_load(TEST_PROGRAM)
        doc["currencies"][0]["precision"] = 0
        with pytest.raises(Problem) as info:
            apply_program(s, parse_program(yaml.safe_dump(doc, allow_unicode=True)))
        s.rollback()
        assert info.value.errors == [
            {
                "field": "currencies[0].precision",
                "code": "immutable",
                "message": "the precision of BONUS is 2 and cannot change",
            }
        ]


def test_export_round_trips(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(TEST_PROGRAM))
        s.commit()
        exported = export_program(s)
        assert not apply_program(s, parse_program(exported)).changed
        assert yaml.safe_load(exported)["currencies"][0]["value"] == "1.00"


def test_program_api(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    admin, analyst = auth("admin"), auth("analyst")
    assert client.get("/api/v1/program", headers=admin).json()["code"] == "program_not_configured"
    r = client.put("/api/v1/program", content=TEST_PROGRAM.encode(), headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["changed"] is True
    again = client.put("/api/v1/program", content=TEST_PROGRAM.encode(), headers=admin)
    assert again.json()["changed"] is False
    got = client.get("/api/v1/program", headers=analyst)
    assert got.status_code == 200
    assert yaml.safe_load(got.text)["name"] == "Test programme"
    assert (
        client.put("/api/v1/program", content=TEST_PROGRAM.encode(), headers=analyst).status_code
        == 403
    )
    bad = client.put("/api/v1/program", content=b"name: x\ncurrencies: []\n", headers=admin)
    assert bad.status_code == 422
    assert bad.json()["code"] == "program_invalid"
    assert bad.json()["errors"][0]["field"] == "currencies"


def test_repeated_codes_are_named_in_order() -> None:
    # given a file naming store "b" twice and store "a" twice, and currency BONUS twice
    doc = yaml.safe_load(TEST_PROGRAM)
    stores = [{"code": c, "name": c.upper()} for c in ("b", "a", "b", "a")]
    currencies = [doc["currencies"][0], doc["currencies"][0]]
    for changes, expected in (
        ({"stores": stores}, "store codes must be unique; repeated: a, b"),
        (
            {"currencies": currencies},
            f"currency codes must be unique; repeated: {currencies[0]['code']}",
        ),
    ):
        # when it is parsed
        with pytest.raises(Problem) as info:
            parse_program(_doc(**changes))
        # then the problem names each repeated code once, sorted
        assert any(expected in (e.get("message") or "") for e in info.value.errors or []), (
            info.value.errors
        )
