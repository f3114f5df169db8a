"""Dates and timestamps a client sends never reach date arithmetic that overflows.

Regression (issue 19): ``occurred_at`` of 9999-12-31 or 0001-01-01 (+14:00) answered 500
(``OverflowError: date value out of range`` in ``rules.service.local_day``,
``ValueError: year 0 is out of range`` in ``rules.engine._birthday_near``), and so did
``as_of``, a report's ``to`` and others. They are 422 naming the field now, and the two
functions are safe whatever reaches them.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from kopilka.core.dates import EARLIEST, LATEST, in_zone, local_day, timestamp_error
from kopilka.core.db import Database
from kopilka.rules import service as rules_service
from kopilka.rules.engine import _birthday_near
from tests.conftest import KeyFactory
from tests.console.test_console import csrf_of, make_user, sign_in
from tests.purchases.conftest import receipt

EXTREMES = [
    "9999-12-31T23:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+00:00",
    "1899-12-31T23:59:59+00:00",
    "3000-01-01T00:00:00+00:00",
]
ZONES = ["Europe/Moscow", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"]


def _fields(r: Any) -> list[tuple[str, str]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["code"]) for e in r.json()["errors"]]


@pytest.fixture
def member(client: TestClient, admin: dict[str, str], program: Database) -> dict[str, Any]:
    r = client.post("/api/v1/members", json={"phone": "+79165550101"}, headers=admin)
    out: dict[str, Any] = r.json()
    return out


# ---------------------------------------------------------------------------- over HTTP


@pytest.mark.parametrize("when", EXTREMES)
def test_a_receipt_or_event_at_the_ends_of_the_calendar_is_422_naming_occurred_at(
    client: TestClient, admin: dict[str, str], member: dict[str, Any], when: str
) -> None:
    # given a receipt and a custom event dated at (or past) the ends of what Kopilka takes
    body = receipt("R-END", member["card_number"], occurred_at=when)
    event = {
        "member": {"id": member["id"]},
        "type": "clothes_recycled",
        "external_id": "E-END",
        "occurred_at": when,
    }
    # when they are calculated, confirmed, recorded or simulated
    answers = {
        "calculate": client.post("/api/v1/purchases/calculate", json=body, headers=admin),
        "confirm": client.post("/api/v1/purchases", json=body, headers=admin),
        "event": client.post("/api/v1/events", json=event, headers=admin),
        "simulate": client.post("/api/v1/rules/simulate", json={"receipt": body}, headers=admin),
    }
    # then each is refused naming the field (never a 500), and nothing is recorded
    assert {k: _fields(r) for k, r in answers.items()} == {
        "calculate": [("occurred_at", "out_of_range")],
        "confirm": [("occurred_at", "out_of_range")],
        "event": [("occurred_at", "out_of_range")],
        "simulate": [("receipt.occurred_at", "out_of_range")],
    }
    assert client.get("/api/v1/purchases", headers=admin).json()["items"] == []
    events = client.get(f"/api/v1/members/{member['id']}/events", headers=admin).json()
    assert events["items"] == []


@pytest.mark.parametrize("when", EXTREMES)
def test_as_of_and_audit_times_at_the_ends_of_the_calendar_are_422(
    client: TestClient, admin: dict[str, str], member: dict[str, Any], when: str
) -> None:
    q = quote(when)
    # when a member's balances or tier are asked for as of such a moment, or the audit log
    # between such moments
    balances = client.get(f"/api/v1/members/{member['id']}/balances?as_of={q}", headers=admin)
    tier = client.get(f"/api/v1/members/{member['id']}/tier?as_of={q}", headers=admin)
    audit = client.get(f"/api/v1/audit?since={q}&until={q}", headers=admin)
    # then each is refused naming the parameter
    assert _fields(balances) == [("as_of", "out_of_range")]
    assert _fields(tier) == [("as_of", "out_of_range")]
    assert _fields(audit) == [("since", "out_of_range"), ("until", "out_of_range")]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=0001-01-01", "to"),
        ("from=0001-01-01&to=0001-01-01", "from"),
        ("to=9999-12-31", "to"),
        ("from=9999-12-30&to=9999-12-31", "from"),
    ],
)
def test_report_dates_at_the_ends_of_the_calendar_are_422(
    client: TestClient, auth: KeyFactory, program: Database, query: str, field: str
) -> None:
    # when a report is asked for over days at the ends of the calendar
    r = client.get(f"/api/v1/reports/active?{query}", headers=auth("analyst"))
    # then it is refused naming the parameter
    assert (field, "out_of_range") in _fields(r)


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_other_timestamps_at_the_ends_of_the_calendar_are_422(
    client: TestClient, admin: dict[str, str], member: dict[str, Any], when: str
) -> None:
    # when a coupon pool, an API key, a tier assignment, a hypothetical member or a replay
    # of a webhook's deliveries carries one
    hook = {"url": "https://example.com/hook", "events": ["*"]}
    webhook = client.post("/api/v1/webhooks", json=hook, headers=admin).json()
    pool = {
        "name": "Spring",
        "reward": {"kind": "percent", "value": "10"},
        "valid_until": when,
    }
    answers = {
        "pool": client.post("/api/v1/coupon-pools", json=pool, headers=admin),
        "key": client.post(
            "/api/v1/apikeys",
            json={"name": "t", "role": "admin", "expires_at": when},
            headers=admin,
        ),
        "tier": client.post(
            f"/api/v1/members/{member['id']}/tier",
            json={"tier": None, "until": when, "reason": "a test"},
            headers=admin,
        ),
        "simulate": client.post(
            "/api/v1/rules/simulate",
            json={
                "receipt": receipt("S", None, occurred_at="2026-11-22T10:00:00+03:00"),
                "member_context": {"joined_at": when, "birth_date": when[:10]},
            },
            headers=admin,
        ),
        "replay": client.post(
            f"/api/v1/webhooks/{webhook['id']}/replay",
            json={"status": "dead", "since": when},
            headers=admin,
        ),
    }
    # then each is refused naming the field
    assert {k: _fields(r) for k, r in answers.items()} == {
        "pool": [("valid_until", "out_of_range")],
        "key": [("expires_at", "out_of_range")],
        "tier": [("until", "out_of_range")],
        "simulate": [
            ("member_context.birth_date", "out_of_range"),
            ("member_context.joined_at", "out_of_range"),
        ],
        "replay": [("since", "out_of_range")],
    }


def test_a_console_tier_floor_until_the_last_day_of_the_calendar_is_refused(
    client: TestClient, program: Database, member: dict[str, Any]
) -> None:
    # given a console user on a member's page
    sign_in(client, make_user(program))
    page = client.get(f"/admin/members/{member['id']}")
    # when they set a tier floor until 9999-12-31, and open the audit log before year 1
    r = client.post(
        f"/admin/members/{member['id']}/tier",
        data={"tier": "", "until": "9999-12-31", "reason": "a test", "csrf": csrf_of(page.text)},
    )
    audit = client.get("/admin/audit?before=" + quote("0001-01-01T00:00:00+14:00"))
    # then the form is refused (the member's page again, 422), not a 500, and the log is
    # shown as if no cursor had been given
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert audit.status_code == 200


# ---------------------------------------------------------------------------- the functions


def test_the_accepted_range_is_inclusive_and_needs_an_offset() -> None:
    assert timestamp_error(EARLIEST) is None
    assert timestamp_error(LATEST) is None
    assert timestamp_error(EARLIEST - dt.timedelta(microseconds=1)) is not None
    assert timestamp_error(LATEST + dt.timedelta(microseconds=1)) is not None
    naive = timestamp_error(dt.datetime(2026, 12, 7))
    assert naive is not None and naive[0] == "naive_datetime"


@given(
    st.datetimes(timezones=st.sampled_from([dt.UTC, *map(zoneinfo.ZoneInfo, ZONES)])),
    st.sampled_from(ZONES),
)
def test_a_local_day_never_overflows(at: dt.datetime, zone: str) -> None:
    # given any moment the calendar has, in any zone; when its local day is asked for
    day = rules_service.local_day(at, zone)
    # then there is one, and it is the day astimezone gives wherever that does not overflow
    try:
        expected = at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    except OverflowError:
        expected = dt.date.max if at.year > 1 else dt.date.min
    assert day == expected
    assert local_day(at, zoneinfo.ZoneInfo(zone)) == day
    assert in_zone(at, zoneinfo.ZoneInfo(zone)).date() == day


def _is_birthday(birth: dt.date, d: dt.date) -> bool:
    if (birth.month, birth.day) == (d.month, d.day):
        return True
    leap = d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)
    return (birth.month, birth.day) == (2, 29) and (d.month, d.day) == (2, 28) and not leap


@given(st.dates(), st.dates(), st.integers(0, 31), st.integers(0, 31))
def test_the_birthday_window_holds_at_the_ends_of_the_calendar(
    birth: dt.date, day: dt.date, before: int, after: int
) -> None:
    # given any birth date and any day, 0001-01-01 and 9999-12-31 included
    # when the engine asks whether the day is in the birthday window
    near = _birthday_near(birth, day, before, after)
    # then it answers (no overflow), as counting the days around it one by one does
    lo = max(day.toordinal() - after, dt.date.min.toordinal())
    hi = min(day.toordinal() + before, dt.date.max.toordinal())
    assert near == any(_is_birthday(birth, dt.date.fromordinal(n)) for n in range(lo, hi + 1))


@pytest.mark.parametrize(
    ("when", "day"),
    [("9999-12-31T23:00:00+00:00", dt.date.max), ("0001-01-01T00:00:00+14:00", dt.date.min)],
)
def test_the_two_crash_sites_of_the_issue_answer(when: str, day: dt.date) -> None:
    # given the issue's moments, whose Moscow day is in year 10000 or year 0
    at = dt.datetime.fromisoformat(when)
    # then the local day is the calendar's last or first, and the birthday window answers
    assert rules_service.local_day(at, "Europe/Moscow") == day
    assert _birthday_near(dt.date(1990, day.month, day.day), day, 3, 3) is True
    assert _birthday_near(dt.date(1990, 6, 15), day, 3, 3) is False
