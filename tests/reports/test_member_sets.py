"""The member sets (``kopilka.reports.membersets``) give exactly the figures of the SQL over
``report_member_days`` they replace (``tests/reports/live_reference.py``): on random small
data sets, and on the hand-computed data sets of the other report tests, report by report.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Uuid, delete, literal, select, union_all

from kopilka.core.db import Database, now
from kopilka.core.money import from_units
from kopilka.members.cards import new_card_number, new_referral_code
from kopilka.members.models import Member
from kopilka.purchases.models import Purchase
from kopilka.reports import membersets
from kopilka.reports import service as reports
from kopilka.reports.jobs import run_rollup
from kopilka.reports.models import MemberDay, MemberIndex, MemberSet, ReportMember
from kopilka.reports.rollup import uuid7_floor
from tests.conftest import KeyFactory
from tests.reports import live_reference as live
from tests.reports.test_campaign_tier_reports import data  # noqa: F401 - fixture
from tests.reports.test_report_figures import M0, figures, today  # noqa: F401 - fixture

BASE = dt.date(2026, 1, 1)
STORES = ("s1", "s2")
CHANNELS = ("pos", "online")
TIERS = ("", "silver", "gold")

revenue = st.one_of(
    st.integers(0, 10**8),  # up to 10 000.00
    st.integers(0, 10**15),  # sums of squares past 64 bits, limbs on the fast path
)
member_day = st.tuples(
    st.integers(0, 24),  # member
    st.integers(0, 59),  # day
    st.sampled_from(STORES),
    st.sampled_from(CHANNELS),
    st.sampled_from(TIERS),
    revenue,
)
data_set = st.fixed_dictionaries(
    {
        "members": st.lists(
            st.tuples(st.integers(0, 70), st.integers(0, 9999)), min_size=0, max_size=25
        ),
        "gaps": st.integers(0, 20),  # numbers nobody has
        "days": st.lists(member_day, max_size=120),
        "start": st.integers(0, 59),
        "length": st.integers(1, 70),
        "store": st.sampled_from([None, *STORES]),
        "channel": st.sampled_from([None, *CHANNELS]),
        "tier": st.sampled_from([None, *TIERS[1:]]),
        "cut": st.sampled_from([0, 5000, 10_000, 3333]),
        "reached": st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 30)), max_size=30),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def _load(db: Database, d: dict[str, Any]) -> list[uuid.UUID]:
    """Write a data set into the rollup tables and the member sets, as the rollup would."""
    rng = np.random.default_rng(d["seed"])
    ids = [uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | i) for i in range(len(d["members"]))]
    numbers = rng.permutation(len(ids) + d["gaps"])[: len(ids)]
    with db.session() as s:
        for table in (MemberDay, ReportMember, MemberSet, MemberIndex):
            s.execute(delete(table))
        s.add_all(
            ReportMember(
                member_id=ids[i],
                joined_day=BASE + dt.timedelta(days=joined),
                bucket=bucket,
                number=int(numbers[i]),
            )
            for i, (joined, bucket) in enumerate(d["members"])
        )
        rows = {}
        for who, day, store, channel, tier, units in d["days"]:
            if who < len(ids):
                key = (BASE + dt.timedelta(days=day), ids[who], store, channel)
                rows[key] = (tier, units)
        s.add_all(
            MemberDay(
                day=day,
                member_id=member,
                store=store,
                channel=channel,
                tier=tier,
                receipts=1,
                revenue=from_units(units),
            )
            for (day, member, store, channel), (tier, units) in rows.items()
        )
        s.flush()
        run = uuid.uuid4().hex
        membersets.write_days(s, BASE, BASE + dt.timedelta(days=70), run)
        membersets.write_index(s, membersets.chunks_to_write(s, []), run)
        s.commit()
    return ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(d=data_set)
def test_member_sets_give_the_figures_of_the_sql(
    db: Database, monkeypatch: pytest.MonkeyPatch, d: dict[str, Any]
) -> None:
    # given a random data set in the rollup tables, with index chunks of 4 members (so
    # that there are several, some of them missing, and numbers nobody has)
    monkeypatch.setattr(membersets, "CHUNK", 4)
    ids = _load(db, d)
    start = BASE + dt.timedelta(days=d["start"])
    f = reports.Filters(
        start, start + dt.timedelta(days=d["length"] - 1), d["store"], d["channel"], d["tier"]
    )
    reached_rows = [
        # a member the rollup does not know (no number) is reached too
        (code, ids[who] if who < len(ids) else uuid.UUID(int=who + 1))
        for code, who in d["reached"]
    ]
    with db.session() as s:
        # when the reports' per-member figures are computed both ways
        # then they are the same, exactly
        assert reports._active_counts(s, f) == live.active_counts(s, f)
        assert reports._group_stats(s, f, d["cut"]) == live.group_stats(s, f, d["cut"])
        if reached_rows:
            reached = union_all(
                *[
                    select(literal(code).label("campaign"), literal(m, Uuid).label("member_id"))
                    for code, m in reached_rows
                ]
            ).subquery()
            got = reports._campaign_revenue(s, f, d["cut"], reached)
            want = live.campaign_revenue(s, f, d["cut"], reached)
            assert got == want


def test_exact_dot_never_wraps_around() -> None:
    # given values whose squares and sums pass 64 bits, negative ones among them
    rng = np.random.default_rng(7)
    for bits in (10, 31, 40, 62):
        a = rng.integers(-(2**bits), 2**bits, 5000, dtype=np.int64)
        b = rng.integers(-(2**bits), 2**bits, 5000, dtype=np.int64)
        # then the sums are those of Python's integers
        assert membersets.exact_dot(a, b) == sum(int(x) * int(y) for x, y in zip(a, b, strict=True))
        assert membersets.exact_sum(a) == sum(int(x) for x in a)


def test_revenue_per_member_past_32_bits_is_exact() -> None:
    # given entries of up to 2⁵⁰ units for a few members
    rng = np.random.default_rng(3)
    numbers = rng.integers(0, 5, 4000).astype(np.intp)
    revenues = rng.integers(0, 2**50, 4000, dtype=np.int64)
    # when added up per member; then each is the exact integer sum
    got = membersets.Selection(numbers, revenues).per_member(5)
    want = [sum(int(r) for n, r in zip(numbers, revenues, strict=True) if n == m) for m in range(5)]
    assert [int(x) for x in got] == want


def _equal_as_served(db: Database, monkeypatch: pytest.MonkeyPatch, cases: list[Any]) -> None:
    """Each report of ``cases`` (name, filters) is the same JSON both ways."""
    for name, f in cases:
        with db.session() as s:
            fast = reports.run(s, name, f).as_json()
        with monkeypatch.context() as m:
            m.setattr(reports, "_active_counts", live.active_counts)
            m.setattr(reports, "_group_stats", live.group_stats)
            m.setattr(reports, "_campaign_revenue", live.campaign_revenue)
            with db.session() as s:
                slow = reports.run(s, name, f).as_json()
        assert fast == slow, (name, f)


@pytest.mark.usefixtures("figures")
def test_figures_data_set_reports_are_the_same_both_ways(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    end = today()
    periods = [(M0, end), (end - dt.timedelta(days=29), end), (M0, M0 + dt.timedelta(days=40))]
    cases = [
        (name, reports.Filters(a, b, store, None, tier))
        for name in ("active", "roi", "campaigns")
        for a, b in periods
        for store, tier in ((None, None), ("s1", None), ("s2", "silver"))
    ]
    _equal_as_served(db, monkeypatch, cases)


@pytest.mark.usefixtures("data")
def test_campaign_data_set_reports_are_the_same_both_ways(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    end = today()
    cases = [
        (name, reports.Filters(end - dt.timedelta(days=days), end, store, channel))
        for name in ("active", "roi", "campaigns")
        for days in (3, 6, 30)
        for store, channel in ((None, None), ("s1", None), ("s2", "pos"))
    ]
    _equal_as_served(db, monkeypatch, cases)


def _sets_as_rows(db: Database) -> set[tuple[Any, ...]]:
    """The member sets decoded back into (day, store, channel, tier, member, units)."""
    with db.session() as s:
        numbers = select(ReportMember.member_id, ReportMember.number)
        by_number = {n: m for m, n in s.execute(numbers)}
        first = s.scalar(select(MemberSet.day).order_by(MemberSet.day)) or BASE
        out = set()
        for day in membersets.days(s, first, today()):
            for store, channel, tier, a, b in day.segments:
                for n, units in zip(day.members[a:b], day.revenues[a:b], strict=True):
                    out.add((day.day, store, channel, tier, by_number[int(n)], int(units)))
    return out


def _member_days(db: Database) -> set[tuple[Any, ...]]:
    with db.session() as s:
        return {
            (r.day, r.store, r.channel, r.tier, r.member_id, int(r.revenue * 10_000))
            for r in s.scalars(select(MemberDay))
        }


@pytest.mark.usefixtures("figures")
def test_the_rollup_keeps_the_member_sets_equal_to_the_member_days(
    db: Database, client: TestClient, auth: KeyFactory
) -> None:
    # given the figures data set after a full rollup: the sets hold every member day
    assert _sets_as_rows(db) == _member_days(db) != set()
    # when a new member buys, an old receipt of A is cancelled, and the rollup runs on
    with db.session() as s:
        newcomer = Member(
            # an id from a day ago: older than what an incremental run looks for, as an
            # import might make; the run finds them through their member day
            id=uuid7_floor(now() - dt.timedelta(days=1)),
            card_number=new_card_number("77"),
            referral_code=new_referral_code(),
            name="Member F",
            created_at=now(),
            updated_at=now(),
        )
        s.add(newcomer)
        s.commit()
        card = newcomer.card_number
        old_receipt = s.scalar(select(Purchase.id).where(Purchase.external_id == "F-0"))
    body = {
        "external_id": "F-new",
        "member": {"card": card},
        "store": "s2",
        "channel": "online",
        "occurred_at": now().isoformat(),
        "lines": [{"sku": "X", "quantity": "1", "unit_price": "75.00"}],
    }
    key = auth("admin")
    r = client.post("/api/v1/purchases", json=body, headers=key)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/purchases/{old_receipt}/cancel", headers=key)
    assert r.status_code == 200, r.text
    run_rollup(settle_seconds=0)
    # then the sets equal the member days again (the newcomer numbered 5, A's day emptied)
    rows = _sets_as_rows(db)
    assert rows == _member_days(db)
    assert not [r for r in rows if r[0] == M0 + dt.timedelta(days=2)]
    with db.session() as s:
        index = membersets.members(s)
        known = {
            n: (d, b)
            for n, d, b in s.execute(
                select(ReportMember.number, ReportMember.joined_day, ReportMember.bucket)
            )
        }
    assert sorted(known) == list(range(6)) and len(index) == 6
    for n, (day, bucket) in known.items():
        assert (int(index.joined[n]), int(index.buckets[n])) == (day.toordinal(), bucket)


@pytest.mark.usefixtures("figures")
def test_cache_rereads_only_days_a_run_rewrote(db: Database) -> None:
    # given the member sets read once, after a run that saw the data set's receipts
    run_rollup(settle_seconds=0, at=now() + dt.timedelta(hours=1))
    with db.session() as s:
        before = {d.day: d for d in membersets.days(s, M0, today())}
    # when the rollup runs again (with nothing new, it redoes today and yesterday only)
    run_rollup(settle_seconds=0, at=now() + dt.timedelta(hours=2))
    with db.session() as s:
        after = {d.day: d for d in membersets.days(s, M0, today())}
    # then older days are the very objects decoded before, and the figures unchanged
    assert before.keys() == after.keys()
    old = [d for d in before if d < today() - dt.timedelta(days=1)]
    assert old and all(after[d] is before[d] for d in old)
    for d in before:
        assert before[d].members.tolist() == after[d].members.tolist()


@pytest.mark.usefixtures("figures")
def test_postgresql_makes_the_same_groups_as_python(db: Database) -> None:
    # given the figures data set rolled up; when both writers' groups are made
    with db.session() as s:
        if s.get_bind().dialect.name != "postgresql":
            pytest.skip("PostgreSQL's own writer")
        first, last = M0, today()
        python = list(membersets._groups(s, first, last))
        pg = list(membersets._groups_pg(s, first, last))
    # then they are the same, group by group
    assert len(python) == len(pg) > 0
    for a, b in zip(python, pg, strict=True):
        assert a[:4] == b[:4]
        assert a[4].tolist() == b[4].tolist() and a[5].tolist() == b[5].tolist()


def test_a_member_active_before_joining_is_not_counted_beyond_the_members(db: Database) -> None:
    # given one member who joined on day 50 and has a receipt dated day 10 (a till's
    # replay), and another who joined on day 5 and bought nothing
    _load(
        db,
        {
            "members": [(50, 1), (5, 2)],
            "gaps": 0,
            "days": [(0, 10, "s1", "pos", "", 10_000)],
            "seed": 1,
        },
    )
    f = reports.Filters(BASE, BASE + dt.timedelta(days=30))
    with db.session() as s:
        # when the active members up to day 30 are counted
        total, counts = reports._active_counts(s, f)
        # then the one member who had joined by then is the whole population, and the
        # receipt of the one who had not does not count (regression: 1 active of 1, 100 %)
        assert (total, counts) == (1, {30: 0, 90: 0})
        assert (total, counts) == live.active_counts(s, f)
