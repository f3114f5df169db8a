"""The challenges' report on a hand-computed example: members joined and completed, the
rate, the rewards' cost (pending and standing, not revoked, in the period), and the spend of
participants against comparable non-participants (deciles of spend in the equal window
before), over the API, as CSV and on the console's screen.

The period is W48 (Monday 2026-11-23 to Sunday 2026-11-29), the window before it
2026-11-16 to 2026-11-22. Spend before → during (roubles):

====  ===========  =======  ======  ==========================================
who   takes part   before   during  band (deciles of 100,100,100,1000,1000,3000,5000)
====  ===========  =======  ======  ==========================================
P1    yes          100      500     1
P2    yes          1000     900     5
P3    yes          —        300     0 (nothing before)
P4    yes          3000     1000    8 (no non-participant there: unmatched)
N1    no           100      200     1
N2    no           100      400     1
N3    no           1000     600     5
N4    no           —        100     0
N5    no           5000     —       9 (no participant there: not comparable)
====  ===========  =======  ======  ==========================================

Matched participants P1, P2, P3 paid 1700: 566.67 each. Their comparable ones, weighted
by the participants of each band: band 1 (200+400)/2 = 300, band 5 600, band 0 100: 1000
for three, 333.33 each. The difference: 700/3 = 233.33 per participant. Comparable
non-participants: N1, N2, N3, N4 (four).

The progress and rewards rows are written as the challenges' service writes them (the
report reads only them); the receipts are real.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.challenges.models import ChallengeEntry, ChallengeReward
from kopilka.core.db import Database
from tests.challenges import console_dataset as data
from tests.conftest import PINNED, Clock
from tests.console.test_console import make_user, sign_in

MSK = dt.timezone(dt.timedelta(hours=3))
PERIOD = {"from": "2026-11-23", "to": "2026-11-29"}
CODE = "five-coffees"


@pytest.fixture
def clock_start() -> dt.datetime:
    """The known set's Saturday (tests/challenges/console_dataset.py), not this folder's
    Tuesday."""
    return PINNED


def at(day: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, 0, tzinfo=MSK)


def make(client: TestClient, db: Database, admin: dict[str, str]) -> dict[str, Any]:
    data.apply(db)
    spend = {
        "P1": ("100", "500"),
        "P2": ("1000", "900"),
        "P3": (None, "300"),
        "P4": ("3000", "1000"),
        "N1": ("100", "200"),
        "N2": ("100", "400"),
        "N3": ("1000", "600"),
        "N4": (None, "100"),
        "N5": ("5000", None),
    }
    people: dict[str, Any] = {}
    for i, (who, (before, during)) in enumerate(spend.items()):
        m = data.enrol(client, admin, f"+7916100{i:04d}", who)
        people[who] = m
        if before:
            data.buy(
                client, admin, f"{who}-b", m, "2026-11-18T12:00:00+03:00", ("X", "misc", before)
            )
        if during:
            data.buy(
                client, admin, f"{who}-d", m, "2026-11-25T12:00:00+03:00", ("X", "misc", during)
            )
    ids = {who: uuid.UUID(m["id"]) for who, m in people.items()}
    with db.session() as s:
        # P1..P4 made progress in W48 (P1 and P2 completed it); N1 completed W47
        entries = (
            ("P1", "2026-W48", at(23), at(27)),
            ("P2", "2026-W48", at(24), at(29)),
            ("P3", "2026-W48", at(25), None),
            ("P4", "2026-W48", at(26), None),
            ("N1", "2026-W47", at(17), at(20)),
        )
        for who, key, made, done in entries:
            s.add(
                ChallengeEntry(
                    member_id=ids[who],
                    challenge=CODE,
                    period_key=key,
                    value=Decimal(3 if done else 1),
                    steps_done=1 if done else 0,
                    completed_at=done,
                    created_at=made,
                    updated_at=done or made,
                )
            )
        rewards = (
            ("P1", "2026-W48", "pending", "BONUS", "100", None, None, at(27)),
            ("P2", "2026-W48", "standing", "BONUS", "100", None, "coffee-lover", at(29)),
            ("P3", "2026-W48", "revoked", "BONUS", "100", None, None, at(28)),
            ("P4", "2026-W48", "pending", None, None, "SUMMER", None, at(26)),
            ("N1", "2026-W47", "standing", "BONUS", "100", None, "coffee-lover", at(20)),
        )
        for who, key, status, cur, amount, pool, badge, when in rewards:
            s.add(
                ChallengeReward(
                    member_id=ids[who],
                    challenge=CODE,
                    period_key=key,
                    step=0,
                    currency=cur,
                    amount=None if amount is None else Decimal(amount),
                    coupon_pool=pool,
                    badge=badge,
                    hold_until=when,
                    status=status,
                    created_at=when,
                )
            )
        s.commit()
    return people


EXPECTED_ITEM = {
    "code": CODE,
    "name": {"ru": "Три кофе за неделю", "en": "Three coffees a week"},
    "join": "auto",
    "joined": 4,
    "took_part": 4,
    "completed": 2,
    "completions": 2,
    "completion_rate": "0.5000",
    # 200 BONUS at 0.50 (P3's was revoked, N1's before the period); SUMMER's face unknown
    "cost": {
        "points": [{"currency": "BONUS", "points": "200.00", "value": "0.5", "money": "100.00"}],
        "coupons": [{"coupon_pool": "SUMMER", "coupons": 1, "face": None, "money": None}],
        "badges": [{"badge": "coffee-lover", "awarded": 1}],
        "money": "100.00",
    },
    "spend": {
        "participants": 4,
        "matched": 3,
        "unmatched": 1,
        "comparable": 4,
        "per_participant": "566.67",
        "per_comparable": "333.33",
        "difference": "233.33",
    },
}


def test_the_report_counts_joined_completed_cost_and_spend_against_comparable_members(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the hand-computed set
    make(client, db, admin)
    # when the report of W48 is asked for
    r = client.get("/api/v1/reports/challenges", params=PERIOD, headers=admin)
    # then every figure is the hand-computed one
    assert r.status_code == 200, r.text
    assert r.json() == {
        "report": "challenges",
        "period": {"from": "2026-11-23", "to": "2026-11-29", "timezone": "Europe/Moscow"},
        "base_currency": "RUB",
        "comparison": {
            "method": "spend_deciles_before",
            "before": {"from": "2026-11-16", "to": "2026-11-22"},
        },
        "items": [EXPECTED_ITEM],
    }
    # and the CSV says the same, numbers as numbers
    csv = client.get("/api/v1/reports/challenges.csv", params=PERIOD, headers=admin)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content.decode("utf-8-sig").split("\r\n")[:5] == [
        "challenge;joined;took_part;completed;completions;completion_rate;cost;"
        "participants_matched;"
        "comparable;spend_per_participant;spend_per_comparable;difference",
        "five-coffees;4;4;2;2;0.5000;100.00;3;4;566.67;333.33;233.33",
        "",
        "challenge;currency;points;value;money",
        "five-coffees;BONUS;200.00;0.5;100.00",
    ]
    same = client.get(
        "/api/v1/reports/challenges", params={**PERIOD, "format": "csv"}, headers=admin
    )
    assert same.content == csv.content


def test_a_bad_period_is_named_and_members_cannot_read_the_report(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    data.apply(db)
    r = client.get("/api/v1/reports/challenges", params={"from": "2026-02-30"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    r = client.get("/api/v1/reports/challenges")
    assert r.status_code == 401


RU = {"Accept-Language": "ru-RU,ru;q=0.9"}


def test_the_console_lists_the_challenges_with_their_figures(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the set and an analyst signed in
    make(client, db, admin)
    sign_in(client, make_user(db, "analyst", "analyst@example.com"))
    # when they open Challenges for W48 in Russian
    page = client.get("/admin/challenges?from=2026-11-23&to=2026-11-29", headers=RU)
    # then the row of the challenge has its figures, written the Russian way
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="nav-challenges"' in html and "Задания" in html
    row = re.search(r'<tr data-challenge="five-coffees">(.*?)</tr>', html, re.S)
    assert row, html
    cells = dict(re.findall(r'data-testid="([a-z-]+)">([^<]*)<', row.group(1)))
    assert cells == {
        "joined": "4",
        "completed": "2",
        "rate": "50,0\u00a0%",
        "cost": "100,00",
        "per-participant": "566,67",
        "per-comparable": "333,33",
        "difference": "233,33",
        "groups": "3 / 4",
        "edit": "Изменить",
    }
    assert "Три кофе за неделю" in html and "+ 1 × SUMMER" in html
    # the CSV link answers the API's file
    csv = client.get("/admin/challenges.csv?from=2026-11-23&to=2026-11-29")
    api = client.get("/api/v1/reports/challenges.csv", params=PERIOD, headers=admin)
    assert csv.status_code == 200 and csv.content == api.content
    # a support agent does not see the screen
    client.cookies.clear()
    sign_in(client, make_user(db, "support", "support@example.com"))
    assert client.get("/admin/challenges").status_code == 403
