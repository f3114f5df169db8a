"""A member's export holds their challenges and badges, an erasure blanks the staff's
words about them; a member of the control group completes a challenge but gets nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.challenges.models import MemberBadge
from kopilka.core.db import Database
from kopilka.spec.control_group import in_control_group
from tests.challenges.conftest import CHALLENGE_PROGRAM, COFFEE, Enrol, apply, balance, buy, mine
from tests.conftest import Clock

AT = "2026-12-08T10:00:00+03:00"


def test_the_export_holds_challenges_and_badges_and_erasure_blanks_the_reason(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given Anna with progress, an opt-in and a badge given by hand
    anna = enrol()
    buy(client, admin, "R-1", anna["card_number"], AT, COFFEE)
    r = client.post(f"/api/v1/members/{anna['id']}/challenges/recycle/join", headers=admin)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/members/{anna['id']}/badges",
        json={"badge": "regular", "reason": "knows everyone by name"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # when she asks for her data
    doc = client.get(f"/api/v1/members/{anna['id']}/export", headers=admin)
    assert doc.status_code == 200, doc.text
    section = doc.json()["other"]["challenges"]
    # then it lists them
    assert [j["challenge"] for j in section["joined"]] == ["recycle"]
    assert sorted((p["challenge"], p["value"]) for p in section["progress"]) == [
        ("december-visits", "1"),
        ("five-coffees", "1"),
    ]
    assert [(b["badge"], b["source"]) for b in section["badges"]] == [("regular", "staff")]
    # and her erasure blanks the staff's reason, keeping the badge
    r = client.post(f"/api/v1/members/{anna['id']}/erase", headers=admin)
    assert r.status_code == 200, r.text
    with db.session() as s:
        reasons = s.scalars(select(MemberBadge.reason)).all()
    assert reasons == [None]


def test_the_control_group_completes_but_gets_no_reward(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, challenges: Clock
) -> None:
    # given half the members held out, and one of them
    apply(db, CHALLENGE_PROGRAM.replace("clock: {", 'control_group_share: "0.5"\nclock: {'))
    half = Decimal("0.5")
    held = next(
        m for m in (enrol() for _ in range(40)) if in_control_group(uuid.UUID(m["id"]), half)
    )
    # when she buys five coffees
    for k in range(5):
        buy(client, admin, f"R-{k}", held["card_number"], AT, COFFEE)
    # then the challenge is completed, and its reward is the control group's: nothing
    item = mine(client, admin, held["id"])["five-coffees"]
    assert item["status"] == "completed"
    assert [(r["status"], r["points"], r["badge"]) for r in item["rewards"]] == [
        ("control_group", None, None)
    ]
    assert balance(client, admin, held["id"]) == ("0.00", "0.00")
    badges = client.get(f"/api/v1/members/{held['id']}/badges", headers=admin).json()
    assert badges["items"] == []
