"""Velocity checks: suspicious patterns are flagged for review, once per time slot."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database, now
from kopilka.security import velocity
from tests.conftest import KeyFactory

T0 = dt.datetime(2026, 11, 23, 12, 0, 3, tzinfo=dt.UTC)


def _minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def test_many_redemptions_within_minutes_are_flagged_once(db: Database) -> None:
    member = uuid.uuid4()
    with db.session() as s:
        # given four redemptions within a few minutes: no flag yet
        for i in range(4):
            assert velocity.note_redemption(s, member, "msk-01", _minutes(i)) == []
        # when the fifth comes within the ten minutes, then one flag is raised
        flags = velocity.note_redemption(s, member, "msk-01", _minutes(4))
        assert [(f.rule, f.details) for f in flags] == [
            ("rapid_redemptions", {"redemptions": 5, "minutes": 10})
        ]
        # and more of the same in that slot raise no other
        assert velocity.note_redemption(s, member, "msk-01", _minutes(5)) == []
        s.commit()


def test_spread_out_redemptions_are_not_flagged(db: Database) -> None:
    member = uuid.uuid4()
    with db.session() as s:
        flags = [velocity.note_redemption(s, member, "msk-01", _minutes(3 * i)) for i in range(8)]
        assert flags == [[]] * 8


def test_one_card_at_many_stores_at_once_is_flagged(db: Database) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    with db.session() as s:
        assert velocity.note_purchase(s, member, "msk-01", _minutes(0)) == []
        assert velocity.note_purchase(s, member, "msk-02", _minutes(2)) == []
        assert velocity.note_purchase(s, other, "p-store", _minutes(2)) == []
        flags = velocity.note_purchase(s, member, "p-store", _minutes(4))
        assert [(f.rule, f.details["stores"]) for f in flags] == [
            ("many_stores", ["msk-01", "msk-02", "p-store"])
        ]
        # a store visited an hour later does not count with the earlier ones
        assert velocity.note_purchase(s, other, "msk-01", _minutes(70)) == []
        s.commit()


def test_old_events_are_pruned(db: Database) -> None:
    with db.session() as s:
        velocity.note_purchase(s, uuid.uuid4(), "msk-01", T0 - dt.timedelta(days=3))
        velocity.note_purchase(s, uuid.uuid4(), "msk-01", T0)
        assert velocity.prune(s, T0) == 1
        s.commit()


@pytest.mark.usefixtures("program")
def test_flags_are_reviewed_over_the_api(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given a flag
    member = uuid.uuid4()
    with db.session() as s:
        for i in range(5):
            velocity.note_redemption(s, member, "msk-01", _minutes(i))
        s.commit()
    manager, admin = auth("manager"), auth("admin")
    # when a manager lists the open flags and dismisses it
    page = client.get("/api/v1/security/flags", headers=manager).json()
    assert [(f["rule"], f["member_id"]) for f in page["items"]] == [
        ("rapid_redemptions", str(member))
    ]
    flag_id = page["items"][0]["id"]
    r = client.post(
        f"/api/v1/security/flags/{flag_id}/review",
        json={"status": "dismissed", "note": "family card"},
        headers=manager,
    )
    # then it is closed, audited, and off the open list
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert client.get("/api/v1/security/flags", headers=manager).json()["items"] == []
    closed = client.get("/api/v1/security/flags?status=all", headers=manager).json()["items"]
    assert closed[0]["reviewed_by"].startswith("api_key:")
    again = client.post(
        f"/api/v1/security/flags/{flag_id}/review", json={"status": "confirmed"}, headers=admin
    )
    assert again.status_code == 409 and again.json()["code"] == "flag_reviewed"
    audit = client.get("/api/v1/audit?action=security.flag_review", headers=admin).json()
    assert audit["items"][0]["after"] == {"status": "dismissed"}
    # and tills cannot see flags
    assert client.get("/api/v1/security/flags", headers=auth("cashier")).status_code == 403


@pytest.mark.usefixtures("program")
def test_rate_limits_in_force_are_listed(client: TestClient, admin: dict[str, str]) -> None:
    limits = {
        x["name"]: x for x in client.get("/api/v1/security/rate-limits", headers=admin).json()
    }
    assert limits["member_lookup_miss"] == {
        "name": "member_lookup_miss",
        "limit": 30,
        "window_seconds": 300,
    }
    assert {"auth_failure", "member_export"} <= set(limits)


def test_the_prune_job_forgets_old_windows_and_events(db: Database) -> None:
    from kopilka.security import ratelimit
    from kopilka.security.jobs import prune

    ratelimit.define("prune_test", 5, 60)
    # two windows that slid by an hour ago, and one velocity event three days old
    ratelimit.hit("prune_test", "a", at=T0.timestamp() - 3600)
    ratelimit.hit("prune_test", "b", at=T0.timestamp() - 3590)
    with db.session() as s:
        velocity.note_purchase(s, uuid.uuid4(), "msk-01", T0 - dt.timedelta(days=3))
        s.commit()
        assert prune(s, T0) == 3
        s.commit()
        assert prune(s, T0) == 0


def test_the_job_notes_each_purchase_once_and_flags_a_card_at_many_stores(
    program: Database, client: TestClient, auth: KeyFactory
) -> None:
    # given a member whose card is used at three stores within six minutes (till time)
    admin = auth("admin")
    m = client.post("/api/v1/members", json={"phone": "+79165550101"}, headers=admin).json()
    anon_and_member = [
        ("msk-01", m["card_number"]),
        ("msk-02", m["card_number"]),
        ("msk-02", None),
        ("p-store", m["card_number"]),
    ]
    at = now()
    for i, (store, card) in enumerate(anon_and_member):
        body: dict[str, Any] = {
            "external_id": f"V-{i}",
            "store": store,
            "occurred_at": (at - dt.timedelta(minutes=6 - 2 * i)).isoformat(),
            "lines": [{"sku": "A", "quantity": "1", "unit_price": "100.00"}],
        }
        if card:
            body["member"] = {"card": card}
        r = client.post("/api/v1/purchases", json=body, headers=admin)
        assert r.status_code == 201, r.text
    # when the scheduled job runs, twice
    with program.session() as s:
        assert velocity.scan_purchases(s, at) == 3  # the member's three, not the anonymous one
        s.commit()
    with program.session() as s:
        assert velocity.scan_purchases(s, at) == 0
        flags, _ = velocity.list_flags(s, status=None, limit=10)
    # then one many_stores flag names the three stores
    assert [(f["rule"], f["member_id"], f["details"]["stores"]) for f in flags] == [
        ("many_stores", m["id"], ["msk-01", "msk-02", "p-store"])
    ]
