"""The simulation of a drafted challenge over the past's receipts: the pure replay on
receipts made by hand (a ladder, an audience, the control group), and over the API on the
known set of tests/challenges/console_dataset.py (returns taken into account, the week's
edge in Moscow, validation errors naming the challenge's fields, nothing written)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.challenges import progress as ev
from kopilka.challenges.models import ChallengeEntry
from kopilka.challenges.simulate import Replayed, default_range, replay
from kopilka.core.db import Database
from kopilka.program.models import ProgramVersion
from kopilka.program.service import parse_program
from kopilka.spec.challenges import ChallengeSpec
from kopilka.spec.control_group import bucket_of
from tests.challenges import console_dataset as data
from tests.conftest import PINNED, Clock

SPEC = parse_program(data.PROGRAM)
MSK = dt.timezone(dt.timedelta(hours=3))


@pytest.fixture
def clock_start() -> dt.datetime:
    """The known set's Saturday (tests/challenges/console_dataset.py), not this folder's
    Tuesday."""
    return PINNED


def challenge(doc: dict[str, Any]) -> ChallengeSpec:
    return ChallengeSpec.model_validate(doc)


def receipt(member: uuid.UUID, day: int, *lines: tuple[str, str, str]) -> Replayed:
    at = dt.datetime(2026, 11, day, 12, 0, tzinfo=MSK)
    ls = tuple(
        ev.Line(i + 1, sku, cat, Decimal(1), Decimal(price))
        for i, (sku, cat, price) in enumerate(lines)
    )
    paid = sum((ln.paid for ln in ls), Decimal(0))
    return Replayed(member, at, ev.Receipt("msk-01", "pos", paid, at.date(), ls))


ANNA, BORIS, OLGA = (uuid.UUID(int=n) for n in (1, 2, 3))
LADDER = {
    "code": "ladder",
    "name": {"ru": "Лестница", "en": "Ladder"},
    "goal": {"count": "paid", "where": {"lines": {"categories": ["coffee"]}}},
    "period": {"every": "month"},
    "steps": [
        {"target": "300", "reward": {"currency": "BONUS", "amount": "10"}},
        {"target": "500", "reward": {"currency": "BONUS", "amount": "30"}},
        {"target": "1000", "reward": {"currency": "BONUS", "amount": "100", "badge": "x"}},
    ],
}


def test_a_ladder_counts_each_step_reached_and_its_rewards() -> None:
    # given coffee paid in November: Anna 200+150 (350), Boris 600 (and 900 of bread),
    # Olga 1000 over two receipts
    receipts = [
        receipt(ANNA, 2, ("C", "coffee", "200")),
        receipt(ANNA, 20, ("C", "coffee", "150")),
        receipt(BORIS, 3, ("C", "coffee", "600"), ("B", "bakery", "900")),
        receipt(OLGA, 4, ("C", "coffee", "400")),
        receipt(OLGA, 28, ("C", "coffee", "600")),
    ]
    everyone = {m: ev.Audience(None, frozenset()) for m in (ANNA, BORIS, OLGA)}
    # when the ladder 300 → 500 → 1000 is replayed over November
    sim = replay(
        challenge(LADDER), SPEC, receipts, everyone, dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    )
    # then three reached the first step, two the second, Olga the last
    assert [s["reached"] for s in sim.steps] == [3, 2, 1]
    assert (sim.receipts, sim.members_buying, sim.eligible) == (5, 3, 3)
    assert (sim.progressed, sim.completed, sim.completions) == (3, 1, 1)
    # and the rewards: 3 x 10 + 2 x 30 + 100 BONUS, one badge
    assert dict(sim.cost.points) == {"BONUS": Decimal(190)}
    assert dict(sim.cost.badges) == {"x": 1}


def test_the_audience_and_the_control_group_are_the_real_ones() -> None:
    # given a challenge for gold members only, and a programme holding out 50 % of members
    doc = {
        "code": "gold",
        "name": {"ru": "Золото", "en": "Gold"},
        "goal": {"count": "purchases", "target": 1},
        "audience": {"tiers": ["gold"]},
        "reward": {"currency": "BONUS", "amount": "5"},
    }
    spec = SPEC.model_copy(update={"control_group_share": Decimal("0.5")})
    members = [uuid.UUID(int=n) for n in range(1, 41)]
    held = [m for m in members if bucket_of(m) < 5000]
    assert 0 < len(held) < len(members)
    receipts = [receipt(m, 10, ("C", "coffee", "1")) for m in members]
    audience = {
        m: ev.Audience("gold" if i % 2 else "silver", frozenset()) for i, m in enumerate(members)
    }
    # when it is replayed
    sim = replay(
        challenge(doc), spec, receipts, audience, dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    )
    # then only the gold ones take part, and those held out complete without a reward
    gold = [m for i, m in enumerate(members) if i % 2]
    gold_held = [m for m in gold if m in held]
    assert (sim.eligible, sim.progressed, sim.completed) == (20, 20, 20)
    assert sim.control_group == len(gold_held)
    assert dict(sim.cost.points) == {"BONUS": Decimal(5 * (20 - len(gold_held)))}


def test_the_default_range_is_the_last_full_period() -> None:
    today = dt.date(2026, 12, 5)  # a Saturday
    weekly = challenge({**LADDER, "period": {"every": "week"}})
    assert default_range(weekly, today) == (dt.date(2026, 11, 23), dt.date(2026, 11, 29))
    assert default_range(challenge(LADDER), today) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    daily = challenge({**LADDER, "period": {"every": "day"}})
    assert default_range(daily, today) == (dt.date(2026, 12, 4), dt.date(2026, 12, 4))
    fixed = challenge({**LADDER, "period": {"from": "2026-01-01", "to": "2026-01-10"}})
    assert default_range(fixed, today) == (dt.date(2026, 11, 25), dt.date(2026, 12, 4))
    streak = challenge(
        {
            "code": "s",
            "name": {"ru": "С", "en": "S"},
            "goal": {"count": "purchases"},
            "streak": {"every": "week", "length": 3, "grace": 1},
            "reward": {"currency": "BONUS", "amount": "1"},
        }
    )
    # four full weeks before this one
    assert default_range(streak, today) == (dt.date(2026, 11, 2), dt.date(2026, 11, 29))
    endless = challenge({**LADDER, "period": None})
    assert default_range(endless, today) == (dt.date(2026, 11, 5), dt.date(2026, 12, 4))


FIVE_COFFEES = yaml.safe_load(data.CHALLENGES)["challenges"][0]


def versions(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(ProgramVersion)).scalar_one())


def test_the_api_replays_last_weeks_receipts_after_their_returns(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    # given the known set
    data.make(client, db, admin)
    before = versions(db)
    # when the published challenge is simulated over its last full week
    r = client.post("/api/v1/challenges/simulate", json={"challenge": FIVE_COFFEES}, headers=admin)
    # then the figures are the hand-computed ones, and nothing was written
    assert r.status_code == 200, r.text
    assert r.json() == {
        "challenge": "five-coffees",
        "range": {"from": "2026-11-23", "to": "2026-11-29", "timezone": "Europe/Moscow"},
        "receipts": 9,
        "members_buying": 4,
        "eligible": 4,
        "progressed": 3,
        "completed": 1,
        "completions": 1,
        "completion_rate": "0.3333",
        "steps": [{"target": "3", "reached": 1}],
        "control_group_completions": 0,
        "cost": {
            "points": [{"currency": "BONUS", "points": "100.00", "value": "0.5", "money": "50.00"}],
            "coupons": [],
            "badges": [{"badge": "coffee-lover", "awarded": 1}],
            "money": "50.00",
        },
    }
    assert versions(db) == before
    # and the receipts' own progress (the challenges' hook, live) agrees: W48's entries
    with db.session() as s:
        rows = s.execute(
            select(ChallengeEntry.value, ChallengeEntry.completed_at).where(
                ChallengeEntry.challenge == "five-coffees", ChallengeEntry.period_key == "2026-W48"
            )
        ).all()
    assert sorted(Decimal(v) for v, _ in rows) == [2, 2, 3]
    # (Olga's completion stands there: with hold_days 0 her reward stood before her
    # return; a replay counts what the return left, as a challenge published now would)
    assert sum(1 for _, done in rows if done is not None) == 2
    # and over W48 and W49 with a target of two: Anna, Boris (in W48), Olga complete;
    # Boris's Monday receipt starts W49 at one
    two = {**FIVE_COFFEES, "goal": {**FIVE_COFFEES["goal"], "target": 2}}
    r = client.post(
        "/api/v1/challenges/simulate",
        json={"challenge": two, "from": "2026-11-23", "to": "2026-12-05"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["receipts"], got["progressed"], got["completed"], got["completions"]) == (
        10,
        3,
        3,
        3,
    )
    assert got["cost"]["money"] == "150.00"


def test_the_api_names_the_challenges_bad_fields(
    client: TestClient, db: Database, admin: dict[str, str], clock: Clock
) -> None:
    data.apply(db)
    bad = {
        **FIVE_COFFEES,
        "goal": {"count": "purchases", "target": "2.5"},
        "reward": {"currency": "NOPE", "amount": "10", "badge": "unknown"},
    }
    r = client.post("/api/v1/challenges/simulate", json={"challenge": bad}, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "program_invalid"
    assert sorted(e["field"] for e in r.json()["errors"]) == ["challenge.goal"]
    # the cross-section checks once the shape is right
    bad["goal"] = FIVE_COFFEES["goal"]
    r = client.post("/api/v1/challenges/simulate", json={"challenge": bad}, headers=admin)
    assert r.status_code == 422, r.text
    assert sorted(e["field"] for e in r.json()["errors"]) == [
        "challenge.reward.badge",
        "challenge.reward.currency",
    ]
    # a goal of events is not counted from receipts
    events = {
        **FIVE_COFFEES,
        "goal": {"count": "events", "target": 1, "where": {"event_type": "recycled"}},
    }
    r = client.post("/api/v1/challenges/simulate", json={"challenge": events}, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "challenge_not_simulated"
    assert [e["field"] for e in r.json()["errors"]] == ["challenge.goal.count"]
    # a range backwards, and a date that is no date
    r = client.post(
        "/api/v1/challenges/simulate",
        json={"challenge": FIVE_COFFEES, "from": "2026-11-10", "to": "2026-11-01"},
        headers=admin,
    )
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["to"]
    r = client.post(
        "/api/v1/challenges/simulate",
        json={"challenge": FIVE_COFFEES, "from": "2026-02-30"},
        headers=admin,
    )
    assert r.status_code == 422 and "from" in r.json()["errors"][0]["field"]


def test_an_opt_in_challenge_is_replayed_as_if_everyone_joined_at_the_start() -> None:
    # given "two receipts within 7 days of joining", and receipts of 2, 5 and 9 November
    doc = {
        "code": "seven-days",
        "name": {"ru": "Неделя", "en": "A week"},
        "goal": {"count": "purchases", "target": 2},
        "join": "opt_in",
        "period": {"days": 7},
        "reward": {"currency": "BONUS", "amount": "10"},
    }
    receipts = [
        receipt(ANNA, 2, ("C", "coffee", "1")),
        receipt(ANNA, 5, ("C", "coffee", "1")),
        receipt(BORIS, 5, ("C", "coffee", "1")),
        receipt(BORIS, 9, ("C", "coffee", "1")),
    ]
    everyone = {m: ev.Audience(None, frozenset()) for m in (ANNA, BORIS)}
    # when replayed from 1 November: both joined then, their 7 days end on the 8th
    sim = replay(
        challenge(doc), SPEC, receipts, everyone, dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    )
    # then Anna's two count and complete it; Boris's second came too late
    assert (sim.progressed, sim.completed) == (2, 1)
    # and a member left out of the audience (blocked, erased: not read) takes no part
    sim = replay(
        challenge(doc),
        SPEC,
        receipts,
        {BORIS: everyone[BORIS]},
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )
    assert (sim.members_buying, sim.eligible, sim.progressed, sim.completed) == (2, 1, 1, 0)
