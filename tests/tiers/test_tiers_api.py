"""The tiers API: a member's tier with progress and history, manual assignment."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database, now
from kopilka.events.models import OutboxEvent
from kopilka.members.models import Member
from kopilka.tiers import service as tiers
from kopilka.tiers.models import MemberTier, TierChange
from tests.conftest import KeyFactory
from tests.security.principals import as_member, principal_sessions
from tests.tiers.conftest import Buy, Enrol

DAY = dt.timedelta(days=1)


def _reevaluate(db: Database, at: dt.datetime) -> int:
    with db.session() as s:
        n = tiers.reevaluate(s, at)
        s.commit()
        return n


def _counts(db: Database) -> tuple[int, int, int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(TierChange)) or 0,
            s.scalar(select(func.count()).select_from(MemberTier)) or 0,
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "member.tier")
            )
            or 0,
            s.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.type == "tier.changed")
            )
            or 0,
        )


def test_the_tier_answers_value_window_next_level_and_history(
    client: TestClient, auth: KeyFactory, enrol: Enrol, buy: Buy
) -> None:
    # given a member who spent 18 000 in two receipts
    m = enrol()
    t = now().replace(microsecond=0) - dt.timedelta(hours=1)
    buy(m, t - DAY, "10000.00")
    buy(m, t, "8000.00")
    # when a cashier asks for their tier
    r = client.get(f"/api/v1/members/{m['id']}/tier", headers=auth("cashier"))
    # then it names the level, the value, the window and what is left to gold
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "silver"
    assert body["level"] == {
        "code": "silver",
        "name": "Серебро",
        "threshold": "0.00",
        "benefits": {"earn_multiplier": "1", "discount_percent": "0"},
    }
    assert body["metric"] == "spend"
    assert body["qualifying_value"] == "18000.00"
    assert body["window"]["rolling_days"] == 365
    assert body["window"]["calendar"] is None
    start = dt.datetime.fromisoformat(body["window"]["from"])
    end = dt.datetime.fromisoformat(body["window"]["to"])
    assert end - start == 365 * DAY
    assert body["next"] == {
        "code": "gold",
        "name": "Золото",
        "threshold": "30000.00",
        "benefits": {"earn_multiplier": "1", "discount_percent": "0"},
        "remaining": "12000.00",
    }
    assert body["floor"] is None and body["grace_until"] is None
    assert [(h["from"], h["to"], h["reason"]) for h in body["history"]] == [
        (None, "silver", "upgrade")
    ]
    assert body["history"][0]["qualifying_value"] == "10000.00"
    assert body["history"][0]["at"] == (t - DAY).astimezone(dt.UTC).isoformat()


def test_as_of_answers_for_another_moment(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    t = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    buy(m, t, "30000.00")
    later = (t + 366 * DAY).isoformat()
    r = client.get(f"/api/v1/members/{m['id']}/tier", params={"as_of": later}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "gold"
    assert r.json()["qualifying_value"] == "0.00"
    assert r.json()["next"]["code"] == "platinum"
    assert r.json()["next"]["remaining"] == "100000.00"
    naive = client.get(
        f"/api/v1/members/{m['id']}/tier", params={"as_of": "2026-06-01T12:00:00"}, headers=admin
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "as_of"


def test_a_manual_floor_holds_until_it_expires(
    db: Database, client: TestClient, auth: KeyFactory, enrol: Enrol, buy: Buy
) -> None:
    # given a silver member with little spend
    m = enrol()
    t = now().replace(microsecond=0)
    buy(m, t - dt.timedelta(minutes=5), "500.00")
    until = t + 10 * DAY
    # when a manager sets platinum until ten days from now
    r = client.post(
        f"/api/v1/members/{m['id']}/tier",
        json={"tier": "platinum", "until": until.isoformat(), "reason": "VIP guest of the opening"},
        headers=auth("manager"),
    )
    # then the member is platinum at once, with the floor and a manual change in history
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "platinum"
    assert body["floor"]["tier"] == "platinum"
    assert body["floor"]["until"] == until.isoformat()
    assert body["floor"]["reason"] == "VIP guest of the opening"
    assert body["floor"]["live"] is True
    assert body["floor"]["set_by"].startswith("api_key:")
    assert [(h["from"], h["to"], h["reason"], h["note"]) for h in body["history"]] == [
        ("silver", "platinum", "manual", "VIP guest of the opening"),
        (None, "silver", "upgrade", None),
    ]
    with db.session() as s:
        event = s.execute(
            select(OutboxEvent)
            .where(OutboxEvent.type == "tier.changed")
            .order_by(OutboxEvent.created_at.desc())
            .limit(1)
        ).scalar_one()
        assert (event.data["to"], event.data["reason"], event.data["valid_until"]) == (
            "platinum",
            "manual",
            until.isoformat(),
        )
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "member.tier")).scalar_one()
        assert audit.target_id == m["id"]
        assert audit.after == {
            "floor": {
                "tier": "platinum",
                "until": until.isoformat(),
                "reason": "VIP guest of the opening",
                "set_by": body["floor"]["set_by"],
                "set_at": audit.after["floor"]["set_at"],
            }
        }
    # when re-evaluated while the floor holds: nothing changes, no grace
    assert _reevaluate(db, t + 5 * DAY) == 0
    # when re-evaluated after it expired: normal rules apply, a grace period starts
    assert _reevaluate(db, t + 11 * DAY) == 1
    got = client.get(
        f"/api/v1/members/{m['id']}/tier",
        params={"as_of": (t + 11 * DAY).isoformat()},
        headers=auth("admin"),
    ).json()
    assert got["tier"] == "platinum"
    assert got["floor"]["live"] is False
    assert got["grace_until"] == (t + 41 * DAY).isoformat()
    # and after the grace, down to what they qualify for
    assert _reevaluate(db, t + 41 * DAY) == 1
    with db.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) == "silver"


def test_a_floor_below_the_tier_keeps_the_tier_and_null_clears_it(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    # given a platinum member
    m = enrol()
    t = now().replace(microsecond=0)
    buy(m, t - dt.timedelta(minutes=1), "100000.00")
    # when given a gold floor for good
    r = client.post(
        f"/api/v1/members/{m['id']}/tier", json={"tier": "gold", "reason": "staff"}, headers=admin
    )
    # then they stay platinum, with the floor
    assert r.status_code == 200, r.text
    assert (r.json()["tier"], r.json()["floor"]["tier"], r.json()["floor"]["until"]) == (
        "platinum",
        "gold",
        None,
    )
    # when all the spend is gone (cancelled), re-evaluation after grace stops at the floor
    purchase_id = client.get("/api/v1/purchases", headers=admin).json()["items"][0]["id"]
    assert (
        client.post(f"/api/v1/purchases/{purchase_id}/cancel", json={}, headers=admin).status_code
        == 200
    )
    _reevaluate(db, t + DAY)
    _reevaluate(db, t + 31 * DAY)
    with db.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) == "gold"
    # when the floor is cleared
    cleared = client.post(
        f"/api/v1/members/{m['id']}/tier",
        json={"tier": None, "reason": "left the staff"},
        headers=admin,
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["floor"] is None
    assert cleared.json()["tier"] == "gold"  # no change at once: normal rules from now on
    assert _reevaluate(db, t + 32 * DAY) == 1  # grace
    assert _reevaluate(db, t + 62 * DAY) == 1  # down
    with db.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) == "silver"


def test_bad_assignments_are_422_naming_the_field_and_change_nothing(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    url = f"/api/v1/members/{m['id']}/tier"
    before = _counts(db)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"tier": "diamond", "reason": "why not"}, "tier", "unknown_tier"),
        ({"tier": "Gold!", "reason": "why not"}, "tier", "string_pattern_mismatch"),
        ({"tier": "gold"}, "reason", "missing"),
        ({"reason": "no tier given"}, "tier", "missing"),
        (
            {"tier": "gold", "until": "2020-01-01T00:00:00+03:00", "reason": "in the past"},
            "until",
            "past",
        ),
        (
            {"tier": "gold", "until": "2030-01-01T00:00:00", "reason": "naive"},
            "until",
            "naive_datetime",
        ),
        (
            {"tier": "gold", "until": "9999-12-31T23:59:59-14:00", "reason": "beyond"},
            "until",
            "out_of_range",
        ),
        ({"tier": "gold", "reason": "x", "colour": "red"}, "colour", "extra_forbidden"),
    ]
    for body, field, code in cases:
        r = client.post(url, json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "validation_error"
        assert (field, code) in [(e["field"], e["code"]) for e in r.json()["errors"]], (
            body,
            r.json(),
        )
    assert _counts(db) == before
    with db.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) is None


def test_an_unknown_member_is_404(client: TestClient, admin: dict[str, str], enrol: Enrol) -> None:
    nobody = uuid.uuid4()
    for r in (
        client.get(f"/api/v1/members/{nobody}/tier", headers=admin),
        client.get(f"/api/v1/members/{nobody}/tier/history", headers=admin),
        client.post(
            f"/api/v1/members/{nobody}/tier", json={"tier": "gold", "reason": "test"}, headers=admin
        ),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "member_not_found"


def test_history_is_paginated_newest_first(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    t = now().replace(microsecond=0) - DAY
    buy(m, t, "100.00")
    buy(m, t + dt.timedelta(hours=1), "30000.00")
    buy(m, t + dt.timedelta(hours=2), "70000.00")
    first = client.get(
        f"/api/v1/members/{m['id']}/tier/history", params={"limit": 2}, headers=admin
    )
    assert first.status_code == 200
    assert [i["to"] for i in first.json()["items"]] == ["platinum", "gold"]
    nxt = first.json()["next_cursor"]
    assert nxt is not None
    rest = client.get(
        f"/api/v1/members/{m['id']}/tier/history", params={"limit": 2, "cursor": nxt}, headers=admin
    )
    assert [i["to"] for i in rest.json()["items"]] == ["silver"]
    assert rest.json()["next_cursor"] is None
    bad = client.get(
        f"/api/v1/members/{m['id']}/tier/history", params={"cursor": "zzz"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_who_may_read_and_assign(client: TestClient, auth: KeyFactory, enrol: Enrol) -> None:
    a, b = enrol(), enrol()
    body = {"tier": "gold", "reason": "a try"}
    assert client.get(f"/api/v1/members/{a['id']}/tier").status_code == 401
    assert (
        client.post(
            f"/api/v1/members/{a['id']}/tier", json=body, headers=auth("cashier")
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/members/{a['id']}/tier", json=body, headers=auth("analyst")
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/members/{a['id']}/tier", headers=auth("partner")).status_code == 403
    assert (
        client.post(f"/api/v1/members/{a['id']}/tier", json=body, headers=auth("admin")).status_code
        == 200
    )
    with principal_sessions():
        own = client.get(f"/api/v1/members/{a['id']}/tier", headers=as_member(a["id"]))
        other = client.get(f"/api/v1/members/{b['id']}/tier", headers=as_member(a["id"]))
        assign = client.post(
            f"/api/v1/members/{a['id']}/tier", json=body, headers=as_member(a["id"])
        )
    assert own.status_code == 200 and own.json()["tier"] == "gold"
    assert other.status_code == 403
    assert assign.status_code == 403


def test_an_idempotent_assignment_is_applied_once(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol()
    headers = {**admin, "Idempotency-Key": "tier-1"}
    body = {"tier": "gold", "reason": "promised on the phone"}
    first = client.post(f"/api/v1/members/{m['id']}/tier", json=body, headers=headers)
    again = client.post(f"/api/v1/members/{m['id']}/tier", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert _counts(db)[0] == 1
    other = client.post(
        f"/api/v1/members/{m['id']}/tier", json={**body, "tier": "platinum"}, headers=headers
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_without_tiers_in_the_programme(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    m = client.post("/api/v1/members", json={"phone": "+79160000077"}, headers=admin).json()
    r = client.get(f"/api/v1/members/{m['id']}/tier", headers=admin)
    assert r.status_code == 200
    assert (r.json()["tier"], r.json()["metric"], r.json()["next"]) == (None, None, None)
    bad = client.post(
        f"/api/v1/members/{m['id']}/tier", json={"tier": "gold", "reason": "test"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tier"


def test_an_erased_member_cannot_be_given_a_tier(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    m = enrol()
    erased = client.post(
        f"/api/v1/members/{m['id']}/erase", json={"reason": "asked"}, headers=admin
    )
    assert erased.status_code == 200, erased.text
    before = _counts(db)
    r = client.post(
        f"/api/v1/members/{m['id']}/tier", json={"tier": "gold", "reason": "test"}, headers=admin
    )
    assert (r.status_code, r.json()["code"]) == (409, "member_erased")
    assert _counts(db) == before
    assert _reevaluate(db, now()) == 0
