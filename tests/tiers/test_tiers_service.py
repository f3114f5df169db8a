"""Tiers over time: upgrades at once, windows, returns, grace, floors, re-evaluation."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.members.models import Member
from kopilka.tiers import service as tiers
from kopilka.tiers.models import MemberTier, TierChange
from tests.tiers.conftest import Buy, Enrol, apply, program_text

T = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _tier(db: Database, member: dict[str, Any]) -> str | None:
    with db.session() as s:
        return s.scalar(select(Member.tier).where(Member.id == uuid.UUID(member["id"])))


def _grace(db: Database, member: dict[str, Any]) -> dt.datetime | None:
    with db.session() as s:
        return s.scalar(
            select(MemberTier.grace_until).where(MemberTier.member_id == uuid.UUID(member["id"]))
        )


def _changes(db: Database, member: dict[str, Any]) -> list[tuple[Any, ...]]:
    with db.session() as s:
        rows = s.execute(
            select(TierChange)
            .where(TierChange.member_id == uuid.UUID(member["id"]))
            .order_by(TierChange.id)
        ).scalars()
        return [(c.from_tier, c.to_tier, c.reason, c.at, c.actor) for c in rows]


def _events(db: Database, member: dict[str, Any]) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.execute(
            select(OutboxEvent)
            .where(
                OutboxEvent.type == "tier.changed", OutboxEvent.member_id == uuid.UUID(member["id"])
            )
            .order_by(OutboxEvent.created_at)
        ).scalars()
        return [e.data for e in rows]


def _value(db: Database, member: dict[str, Any], at: dt.datetime) -> Decimal:
    """The qualifying value, read both ways: the batch query of the re-evaluation and the
    one statement of a purchase (``standing``) must agree, for every metric."""
    with db.session() as s:
        value = tiers.qualifying_value(s, uuid.UUID(member["id"]), at)
        setup = tiers.setup(s)
        assert setup is not None
        one = tiers.standing(s, setup, uuid.UUID(member["id"]), at)
        assert one is not None
        assert one.value == value
        return value


def _reevaluate(db: Database, at: dt.datetime) -> int:
    with db.session() as s:
        n = tiers.reevaluate(s, at)
        s.commit()
        return n


def _return(
    client: TestClient, admin: dict[str, str], purchase: dict[str, Any], *lines: int
) -> None:
    r = client.post(
        f"/api/v1/purchases/{purchase['id']}/returns",
        json={
            "external_id": f"R-{uuid.uuid4().hex[:8]}",
            "lines": [{"line_no": n, "quantity": "1"} for n in lines],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text


def test_a_purchase_reaching_a_threshold_upgrades_at_once(
    db: Database, enrol: Enrol, buy: Buy
) -> None:
    # given a new member, without a tier yet
    m = enrol()
    assert _tier(db, m) is None
    # when they buy for 29 999.99
    buy(m, T, "29999.99")
    # then they are silver (threshold 0), not yet gold
    assert _tier(db, m) == "silver"
    # when they buy for 0.01 more, an hour later
    buy(m, T + dt.timedelta(hours=1), "0.01")
    # then they are gold at once, and both changes are in the history at the purchases' times
    assert _tier(db, m) == "gold"
    assert _changes(db, m) == [
        (None, "silver", "upgrade", T, "system:tiers"),
        ("silver", "gold", "upgrade", T + dt.timedelta(hours=1), "system:tiers"),
    ]
    # and a tier.changed event was written with each
    assert _events(db, m) == [
        {
            "member_id": m["id"],
            "from": None,
            "to": "silver",
            "reason": "upgrade",
            "at": T.isoformat(),
            "from_name": None,
            "to_name": "Серебро",
            "valid_until": None,
        },
        {
            "member_id": m["id"],
            "from": "silver",
            "to": "gold",
            "reason": "upgrade",
            "at": (T + dt.timedelta(hours=1)).isoformat(),
            "from_name": "Серебро",
            "to_name": "Золото",
            "valid_until": None,
        },
    ]


def test_one_purchase_can_skip_a_level(db: Database, enrol: Enrol, buy: Buy) -> None:
    m = enrol()
    buy(m, T, "100000.00")
    assert _tier(db, m) == "platinum"
    assert [c[:3] for c in _changes(db, m)] == [(None, "platinum", "upgrade")]


def test_a_committed_hold_upgrades_and_a_held_one_does_not(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a member with a receipt of 30 000 held at the till
    m = enrol()
    body = {
        "external_id": "H-1",
        "member": {"card": m["card_number"]},
        "store": "msk-01",
        "occurred_at": T.isoformat(),
        "lines": [{"sku": "TV", "quantity": "1", "unit_price": "30000.00"}],
        "hold": True,
    }
    held = client.post("/api/v1/purchases", json=body, headers=admin)
    assert held.status_code == 201, held.text
    # then nothing counts yet
    assert _tier(db, m) is None
    # when the hold is committed
    r = client.post(f"/api/v1/purchases/{held.json()['id']}/commit", json={}, headers=admin)
    assert r.status_code == 200, r.text
    # then the member is gold at once
    assert _tier(db, m) == "gold"


def test_the_rolling_window_counts_364_days_back_but_not_366(
    db: Database, enrol: Enrol, buy: Buy
) -> None:
    # given one member who bought for 29 000 366 days ago, another 364 days ago
    old, recent = enrol(), enrol()
    buy(old, T - 366 * DAY, "29000.00")
    buy(recent, T - 364 * DAY, "29000.00")
    # when both buy for 1 000 now
    buy(old, T, "1000.00")
    buy(recent, T, "1000.00")
    # then only the purchase still inside the window counts
    assert _value(db, old, T) == Decimal("1000.00")
    assert _value(db, recent, T) == Decimal("30000.00")
    assert _tier(db, old) == "silver"
    assert _tier(db, recent) == "gold"


def test_a_calendar_month_starts_at_midnight_in_the_programmes_time_zone(
    db: Database, enrol: Enrol, buy: Buy
) -> None:
    # given tiers by calendar month, and the programme in Moscow (UTC+3)
    apply(db, program_text(window={"calendar": "month"}))
    m = enrol()
    msk = dt.timezone(dt.timedelta(hours=3))
    # when the member buys at 23:30 on 31 October and at 00:30 on 1 November, Moscow time
    # (both still 31 October in UTC)
    buy(m, dt.datetime(2026, 10, 31, 23, 30, tzinfo=msk), "20000.00")
    buy(m, dt.datetime(2026, 11, 1, 0, 30, tzinfo=msk), "15000.00")
    # then the first belongs to October and the second to November
    assert _value(db, m, dt.datetime(2026, 10, 31, 23, 59, tzinfo=msk)) == Decimal("20000.00")
    assert _value(db, m, dt.datetime(2026, 11, 1, 0, 0, tzinfo=msk)) == Decimal("0")
    assert _value(db, m, dt.datetime(2026, 11, 1, 0, 30, tzinfo=msk)) == Decimal("15000.00")
    assert _value(db, m, dt.datetime(2026, 11, 30, 23, 59, tzinfo=msk)) == Decimal("15000.00")
    # and 35 000 within one UTC day never made them gold
    assert _tier(db, m) == "silver"
    # and the window answered by the API starts at local midnight
    with db.session() as s:
        setup = tiers.setup(s)
        assert setup is not None
        start, _ = tiers.window(setup, dt.datetime(2026, 11, 15, tzinfo=dt.UTC))
    assert start == dt.datetime(2026, 10, 31, 21, 0, tzinfo=dt.UTC)


def test_calendar_year_and_quarter_windows(db: Database) -> None:
    apply(db, program_text(window={"calendar": "quarter"}))
    at = dt.datetime(2026, 8, 15, 9, 0, tzinfo=dt.UTC)
    with db.session() as s:
        quarter = tiers.setup(s)
        assert quarter is not None
        assert tiers.window(quarter, at) == (dt.datetime(2026, 6, 30, 21, 0, tzinfo=dt.UTC), at)
    apply(db, program_text(window={"calendar": "year"}))
    with db.session() as s:
        year = tiers.setup(s)
        assert year is not None
        assert tiers.window(year, at)[0] == dt.datetime(2025, 12, 31, 21, 0, tzinfo=dt.UTC)


def test_a_return_below_the_threshold_downgrades_only_after_the_grace_period(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    # given a gold member by one receipt of 25 000 + 10 000
    m = enrol()
    p = buy(m, T, "25000.00", "10000.00")
    assert _tier(db, m) == "gold"
    # when the 10 000 line is returned
    _return(client, admin, p, 2)
    # then the qualifying value drops, but the member stays gold
    assert _value(db, m, T + DAY) == Decimal("25000.00")
    assert _tier(db, m) == "gold"
    # when the tiers are re-evaluated the next day
    assert _reevaluate(db, T + DAY) == 1
    # then a grace period of 30 days starts, still gold
    assert _tier(db, m) == "gold"
    assert _grace(db, m) == T + 31 * DAY
    # when re-evaluated again during the grace period
    assert _reevaluate(db, T + 30 * DAY) == 0
    assert _tier(db, m) == "gold"
    # when re-evaluated at the end of the grace period
    assert _reevaluate(db, T + 31 * DAY) == 1
    # then they move down to the level they qualify for, and the grace is over
    assert _tier(db, m) == "silver"
    assert _grace(db, m) is None
    assert [c[:4] for c in _changes(db, m)] == [
        (None, "gold", "upgrade", T),
        ("gold", "silver", "grace_expired", T + 31 * DAY),
    ]
    assert [(e["from"], e["to"], e["reason"]) for e in _events(db, m)] == [
        (None, "gold", "upgrade"),
        ("gold", "silver", "grace_expired"),
    ]


def test_a_cancelled_purchase_does_not_count(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    p = buy(m, T, "40000.00")
    assert _tier(db, m) == "gold"
    r = client.post(f"/api/v1/purchases/{p['id']}/cancel", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert _value(db, m, T) == Decimal("0")
    # no downgrade at once either
    assert _tier(db, m) == "gold"


def test_grace_is_cleared_when_the_member_qualifies_again(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    # given a gold member in grace after a return
    m = enrol()
    p = buy(m, T, "25000.00", "10000.00")
    _return(client, admin, p, 2)
    _reevaluate(db, T + DAY)
    assert _grace(db, m) == T + 31 * DAY
    # when they buy for 5 000 during the grace period
    buy(m, T + 2 * DAY, "5000.00")
    # then the grace is cleared at once and they stay gold
    assert _grace(db, m) is None
    assert _tier(db, m) == "gold"
    # and the end of the former grace period changes nothing
    assert _reevaluate(db, T + 32 * DAY) == 0
    assert _tier(db, m) == "gold"
    assert [c[2] for c in _changes(db, m)] == ["upgrade"]


def test_reevaluation_clears_grace_when_back_above(db: Database) -> None:
    # given the decision of a re-evaluation for a gold member in grace, back at 30 000
    with db.session() as s:
        apply(db, program_text())
        setup = tiers.setup(s)
        assert setup is not None
    state = MemberTier(member_id=uuid.uuid4(), grace_until=T + 10 * DAY)
    d = tiers.decide(setup.tiers, "gold", Decimal("30000"), state, T, may_lower=True)
    # then the grace is cleared and the tier kept
    assert d == tiers.Decision("gold", None, None)
    # and below with the grace over, down to what they qualify for
    d = tiers.decide(setup.tiers, "platinum", Decimal("31000"), state, T + 10 * DAY, may_lower=True)
    assert d == tiers.Decision("gold", "grace_expired", None)
    # and a purchase never lowers
    assert (
        tiers.decide(setup.tiers, "platinum", Decimal("0"), state, T + 99 * DAY, may_lower=False)
        is None
    )


def test_without_grace_days_the_reevaluation_downgrades_at_once(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    apply(db, program_text(grace_days=0))
    m = enrol()
    p = buy(m, T, "25000.00", "10000.00")
    _return(client, admin, p, 2)
    assert _tier(db, m) == "gold"
    assert _reevaluate(db, T + DAY) == 1
    assert _tier(db, m) == "silver"
    assert _changes(db, m)[-1][:3] == ("gold", "silver", "downgrade")


def test_purchases_leaving_the_window_start_the_grace(db: Database, enrol: Enrol, buy: Buy) -> None:
    m = enrol()
    buy(m, T, "30000.00")
    assert _reevaluate(db, T + 365 * DAY) == 0
    assert _reevaluate(db, T + 366 * DAY) == 1
    assert _grace(db, m) == T + 396 * DAY
    assert _reevaluate(db, T + 396 * DAY) == 1
    assert _tier(db, m) == "silver"


def test_reevaluation_run_twice_changes_nothing_the_second_time(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    # given members in every situation: none yet, to upgrade, into grace, out of grace
    fresh = enrol()
    gold = enrol()
    buy(gold, T, "30000.00")
    falling = enrol()
    p = buy(falling, T, "25000.00", "10000.00")
    _return(client, admin, p, 2)
    with db.session() as s:
        # a member who reached gold before tiers were applied: no purchase since
        s.execute(
            Member.__table__.update().where(Member.id == uuid.UUID(gold["id"])).values(tier=None)
        )
        s.commit()
    at = T + DAY

    def snapshot() -> tuple[Any, ...]:
        with db.session() as s:
            return (
                sorted((str(i), t or "") for i, t in s.execute(select(Member.id, Member.tier))),
                sorted(
                    (str(r.member_id), r.grace_until.isoformat() if r.grace_until else "")
                    for r in s.execute(select(MemberTier)).scalars()
                ),
                s.scalar(select(func.count()).select_from(TierChange)),
                s.scalar(select(func.count()).select_from(OutboxEvent)),
            )

    # when the job runs
    first = _reevaluate(db, at)
    after_first = snapshot()
    # and runs again at the same moment
    second = _reevaluate(db, at)
    # then the first run changed three members and the second nothing
    assert (first, second) == (3, 0)
    assert snapshot() == after_first
    assert _tier(db, fresh) == "silver"
    assert _tier(db, gold) == "gold"
    assert _grace(db, falling) == at + 30 * DAY


def test_the_job_is_registered_with_the_worker() -> None:
    from kopilka.core.jobs import JOBS, load_jobs

    load_jobs()
    assert JOBS["tiers.reevaluate"].every_seconds == 3600


def test_an_unknown_level_after_a_programme_change_is_replaced_at_reevaluation(
    db: Database, enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    buy(m, T, "100000.00")
    levels = [
        {"code": "silver", "name": "Серебро", "threshold": "0"},
        {"code": "gold", "name": "Золото", "threshold": "30000"},
    ]
    apply(db, program_text(levels=levels))
    assert _reevaluate(db, T + DAY) == 1
    assert _tier(db, m) == "gold"
    assert _changes(db, m)[-1][:3] == ("platinum", "gold", "program_changed")


def test_points_metric_counts_earned_points_net_of_revocations(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    # given tiers by BONUS earned (5 % of the money paid): gold at 1 500
    levels = [
        {"code": "silver", "name": "S", "threshold": "0"},
        {"code": "gold", "name": "G", "threshold": "1500"},
    ]
    apply(db, program_text(metric="points", currency="BONUS", levels=levels))
    m = enrol()
    # when the member buys for 20 000 + 10 000 (earning 1 000 + 500)
    p = buy(m, T, "20000.00", "10000.00")
    # then they reached gold
    assert _value(db, m, T) == Decimal("1500.00")
    assert _tier(db, m) == "gold"
    # when the second line is returned, its 500 points are taken back
    _return(client, admin, p, 2)
    assert _value(db, m, T) == Decimal("1000.00")


def test_purchases_metric_counts_receipts_not_returned_in_full(
    db: Database, client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy
) -> None:
    levels = [
        {"code": "silver", "name": "S", "threshold": "0"},
        {"code": "gold", "name": "G", "threshold": "3"},
    ]
    apply(db, program_text(metric="purchases", levels=levels))
    m = enrol()
    a = buy(m, T, "100.00", "50.00")
    b = buy(m, T + dt.timedelta(minutes=1), "100.00")
    assert _tier(db, m) == "silver"
    buy(m, T + dt.timedelta(minutes=2), "100.00")
    assert _tier(db, m) == "gold"
    _return(client, admin, a, 1)  # part of a: still counts
    assert _value(db, m, T + DAY) == Decimal("3")
    _return(client, admin, b, 1)  # all of b: no longer counts
    assert _value(db, m, T + DAY) == Decimal("2")
