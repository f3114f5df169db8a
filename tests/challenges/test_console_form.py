"""The console's challenge form: errors beside the fields they concern (the programme file's
own validation), the check that simulates and shows the programme's diff, publishing a new
version (audited) only by a manager or an admin and only if the version checked is still
in force, and editing a challenge of the programme."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.program.service import export_program
from kopilka.users.models import User
from tests.challenges import console_dataset as data
from tests.conftest import PINNED, Clock
from tests.console.test_console import csrf_of, make_user, sign_in

GOOD = {
    "code": "two-breads",
    "name_ru": "Два хлеба",
    "name_en": "Two breads",
    "join": "auto",
    "count": "purchases",
    "target": "2",
    "categories": "bakery",
    "period_kind": "every",
    "every": "week",
    "reward_currency": "BONUS",
    "reward_amount": "20",
    "hold_days": "0",
    "streak_every": "week",
    "streak_grace": "0",
}


@pytest.fixture
def clock_start() -> dt.datetime:
    """The known set's Saturday (tests/challenges/console_dataset.py), not this folder's
    Tuesday."""
    return PINNED


def post(client: TestClient, csrf: str, action: str, version: int = 2, **fields: Any) -> Any:
    body = {"csrf": csrf, "action": action, "replacing": "", "version": str(version), **fields}
    return client.post("/admin/challenges/draft", data=body, follow_redirects=False)


def checked_of(html: str) -> str:
    found = re.search(r'name="checked" value="([0-9a-f]+)"', html)
    assert found, html[:3000]
    return found.group(1)


def errors_for(html: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, message in re.findall(r'data-error-for="([a-z_]+)">([^<]*)<', html):
        out.setdefault(name, []).append(message)
    return out


def test_bad_fields_are_named_beside_them_and_nothing_is_published(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the programme (version 1) and a manager signed in
    data.apply(db)
    sign_in(client, make_user(db, "manager", "manager@example.com"))
    csrf = csrf_of(client.get("/admin/challenges/new").text)
    # when the form has a bad code, no English name, a target of 2.5 receipts
    r = post(
        client, csrf, "check", **{**GOOD, "code": "Two Breads!", "name_en": "", "target": "2.5"}
    )
    # then each error is beside its field
    assert r.status_code == 422, r.text
    got = errors_for(r.text)
    assert sorted(got) == ["code", "name_en", "target"]
    assert "whole target" in got["target"][0]
    # when the shape is right but the reward's currency and badge are unknown, and a ladder
    # line is not "target: amount"
    r = post(client, csrf, "check", **{**GOOD, "reward_currency": "GOLD", "badge": "nope"})
    assert r.status_code == 422
    assert sorted(errors_for(r.text)) == ["badge", "reward_currency"]
    r = post(client, csrf, "check", **{**GOOD, "reward_amount": "", "steps": "2: 10\n5"})
    assert r.status_code == 422 and sorted(errors_for(r.text)) == ["steps"]
    # a ladder and a single amount both
    r = post(client, csrf, "check", **{**GOOD, "steps": "2: 10\n5: 20"})
    assert r.status_code == 422 and sorted(errors_for(r.text)) == ["reward_amount"]
    # a fixed period backwards, a bad simulation date
    r = post(
        client,
        csrf,
        "check",
        **{**GOOD, "period_kind": "fixed", "period_from": "2026-12-10", "period_to": "2026-12-01"},
    )
    assert r.status_code == 422 and sorted(errors_for(r.text)) == ["period_kind"]
    r = post(client, csrf, "check", **{**GOOD, "sim_from": "2026-13-01"})
    assert r.status_code == 422 and sorted(errors_for(r.text)) == ["sim_from"]
    # and publishing a bad form publishes nothing
    r = post(client, csrf, "publish", version=1, **{**GOOD, "target": "0"})
    assert r.status_code == 422 and sorted(errors_for(r.text)) == ["target"]
    with db.session() as s:
        assert "two-breads" not in export_program(s)


def test_the_check_simulates_and_shows_the_diff_then_publishing_makes_a_version(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the known receipts (programme version 1) and a manager signed in
    data.make(client, db, admin)
    sign_in(client, make_user(db, "manager", "manager@example.com"))
    csrf = csrf_of(client.get("/admin/challenges/new").text)
    # when they check a weekly "two breads" challenge
    r = post(client, csrf, "check", version=1, **GOOD)
    # then the simulation over last week says: Anna, Ivan and Olga (whose bread stayed) bought
    # bread once each: nobody completed it
    assert r.status_code == 200, r.text
    html = r.text
    kpis = dict(re.findall(r'data-testid="sim-([a-z]+)"><span>[^<]*</span><strong>([^<]*)<', html))
    assert kpis == {"eligible": "4", "progressed": "3", "completed": "0", "cost": "0.00"}
    # and the diff adds the challenge to the programme
    diff = re.search(r'data-testid="diff">(.*?)</pre>', html, re.S)
    assert diff and "+- code: two-breads" in diff.group(1).replace("&#43;", "+")
    assert 'data-testid="publish"' in html
    # when they change the reward after the check and publish
    checked = checked_of(html)
    r = post(client, csrf, "publish", version=1, checked=checked, **{**GOOD, "reward_amount": "25"})
    # then the new form is checked again and shown, not applied
    assert r.status_code == 409 and "The form changed since the check" in r.text
    assert checked_of(r.text) != checked
    with db.session() as s:
        assert "two-breads" not in export_program(s)
    # when they publish what they checked
    r = post(client, csrf, "publish", version=1, checked=checked, **GOOD)
    # then the programme's version 2 has it, and the audit says who
    assert r.status_code == 303 and r.headers["location"] == "/admin/challenges?done=published:2"
    with db.session() as s:
        text = export_program(s)
        audit = s.execute(
            select(AuditEntry).where(
                AuditEntry.action == "program.apply", AuditEntry.target_id == "2"
            )
        ).scalar_one_or_none()
        manager = s.execute(select(User.id).where(User.email == "manager@example.com")).scalar_one()
    assert "code: two-breads" in text and "categories:\n        - bakery" in text
    assert audit is not None and audit.actor == f"user:{manager}"
    assert audit.details == {"changed": ["challenges"]}
    listed = client.get("/admin/challenges?done=published:2").text
    assert 'data-challenge="two-breads"' in listed and 'data-testid="done"' in listed
    # publishing the same check again, on a version no longer in force, is refused
    r = post(client, csrf, "publish", version=1, checked=checked, **{**GOOD, "reward_amount": "30"})
    assert r.status_code == 409 and "The programme changed since the check" in r.text
    with db.session() as s:
        assert 'amount: "30"' not in export_program(s) and "amount: '30'" not in export_program(s)


def test_editing_a_challenge_fills_the_form_and_replaces_it(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the programme with five-coffees and an admin signed in
    data.apply(db)
    sign_in(client, make_user(db, "admin", "boss@example.com"))
    # when they open it
    page = client.get("/admin/challenges/five-coffees/edit")
    assert page.status_code == 200, page.text
    values = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)" data-testid', page.text))
    assert {k: values[k] for k in ("code", "name_en", "target", "categories", "reward_amount")} == {
        "code": "five-coffees",
        "name_en": "Three coffees a week",
        "target": "3",
        "categories": "coffee",
        "reward_amount": "100",
    }
    assert re.search(r'<option value="coffee-lover" selected>', page.text)
    # and publish it with a target of four
    form = {
        **values,
        "count": "purchases",
        "period_kind": "every",
        "every": "week",
        "join": "auto",
        "reward_currency": "BONUS",
        "badge": "coffee-lover",
        "target": "4",
    }
    body = {**form, "csrf": csrf_of(page.text), "replacing": "five-coffees", "version": "1"}
    check = client.post("/admin/challenges/draft", data={**body, "action": "check"})
    assert check.status_code == 200, check.text
    body |= {"action": "publish", "checked": checked_of(check.text)}
    r = client.post("/admin/challenges/draft", data=body, follow_redirects=False)
    # then the programme has one five-coffees, with the new target
    assert r.status_code == 303, r.text
    with db.session() as s:
        text = export_program(s)
    assert text.count("code: five-coffees") == 1 and "target: '4'" in text
    # an unknown challenge is a 404
    assert client.get("/admin/challenges/nope/edit").status_code == 404


def test_an_analyst_checks_but_does_not_publish(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    data.apply(db)
    sign_in(client, make_user(db, "analyst", "analyst@example.com"))
    csrf = csrf_of(client.get("/admin/challenges/new").text)
    r = post(client, csrf, "check", version=1, **GOOD)
    assert r.status_code == 200 and 'data-testid="publish"' not in r.text
    r = post(client, csrf, "publish", version=1, **GOOD)
    assert r.status_code == 403
    # and a post without the session's token changes nothing
    r = post(client, "forged", "check", version=1, **GOOD)
    assert r.status_code == 403
