"""Cohort retention: a cohort's size and its cells count the same members, so a share
never exceeds 1, whichever days the period cuts from its first and last months."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from kopilka.core.db import Database
from kopilka.members.cards import new_card_number, new_referral_code
from kopilka.members.models import Member
from kopilka.reports import api as reports_api
from kopilka.reports import rollup
from kopilka.reports import service as reports
from kopilka.reports.jobs import run_rollup
from kopilka.reports.models import CohortCell, MemberDay, ReportMember
from kopilka.reports.shared import add_months, first_of_month
from tests.conftest import KeyFactory

ZONE = zoneinfo.ZoneInfo("Europe/Moscow")
# The clock the reports read: a day in July 2026, after every receipt below.
PINNED = dt.datetime(2026, 7, 20, 12, 0, tzinfo=ZONE)


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    for module in (reports, reports_api):
        monkeypatch.setattr(module, "now", lambda: PINNED.astimezone(dt.UTC))
    return PINNED


def _at(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(12), tzinfo=ZONE)


def test_a_period_cut_in_its_months_sizes_and_counts_the_same_members(
    program: Database, client: TestClient, auth: KeyFactory, pinned: dt.datetime
) -> None:
    # given members who joined before, within and after 2026-03-10 … 2026-06-15, and
    # bought (receipts over HTTP) in the months after
    joined_and_bought = {
        "A": ("2026-03-02", ["2026-03-02", "2026-04-10"]),  # joined before the period
        "B": ("2026-03-12", ["2026-03-12", "2026-04-03", "2026-06-20"]),
        "C": ("2026-04-15", ["2026-05-05"]),
        "D": ("2026-06-03", ["2026-06-03"]),
        "E": ("2026-06-20", ["2026-06-20"]),  # joined after the period, in its last month
        "F": ("2026-06-28", ["2026-06-28", "2026-07-02"]),
    }
    cards = {}
    with program.session() as s:
        for name, (joined, _) in joined_and_bought.items():
            m = Member(
                card_number=new_card_number("77"),
                referral_code=new_referral_code(),
                name=f"Member {name}",
                created_at=_at(joined),
                updated_at=_at(joined),
            )
            s.add(m)
            s.flush()
            cards[name] = m.card_number
        s.commit()
    key = auth("admin")
    for name, (_, days) in joined_and_bought.items():
        for n, day in enumerate(days):
            r = client.post(
                "/api/v1/purchases",
                json={
                    "external_id": f"{name}-{n}",
                    "member": {"card": cards[name]},
                    "store": "msk-01",
                    "occurred_at": _at(day).isoformat(),
                    "lines": [{"sku": "A", "quantity": "1", "unit_price": "100.00"}],
                },
                headers=key,
            )
            assert r.status_code == 201, r.text
    run_rollup(full=True, settle_seconds=0)
    # when the cohorts of 10 March … 15 June are asked for
    r = client.get(
        "/api/v1/reports/cohorts", params={"from": "2026-03-10", "to": "2026-06-15"}, headers=key
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    # then each cohort is the members who joined in its month within the period (March: B,
    # not A; June: D, not E or F), and its cells count only them (regression: June had
    # 1 member and 3 active in month 0, a retention of 3.0000)
    cells = [
        (i["cohort"], i["members"], i["months_after"], i["active"], i["retention"])
        for i in doc["items"]
    ]
    assert cells == [
        ("2026-03-01", 1, 0, 1, "1.0000"),
        ("2026-03-01", 1, 1, 1, "1.0000"),
        ("2026-03-01", 1, 2, 0, "0.0000"),
        ("2026-03-01", 1, 3, 1, "1.0000"),
        ("2026-03-01", 1, 4, 0, "0.0000"),
        ("2026-04-01", 1, 0, 0, "0.0000"),
        ("2026-04-01", 1, 1, 1, "1.0000"),
        ("2026-04-01", 1, 2, 0, "0.0000"),
        ("2026-04-01", 1, 3, 0, "0.0000"),
        ("2026-05-01", 0, 0, 0, None),
        ("2026-05-01", 0, 1, 0, None),
        ("2026-05-01", 0, 2, 0, None),
        ("2026-06-01", 1, 0, 1, "1.0000"),
        ("2026-06-01", 1, 1, 0, "0.0000"),
    ]
    # and the summary's retention is of the same members: month 1 is B, C back of B, C, D
    assert doc["summary"] == {
        "retention_month_1": "0.6667",
        "retention_month_2": "0.0000",
        "retention_month_3": "0.5000",
    }


# ---------------------------------------------------------------------------- property

BASE = dt.date(2026, 1, 1)
data_set = st.fixed_dictionaries(
    {
        # each member: the day they joined and the days they bought (days from BASE; a
        # receipt may be dated before its member joined: a till's replay)
        "members": st.lists(
            st.tuples(st.integers(0, 150), st.lists(st.integers(0, 180), max_size=6)),
            max_size=30,
        ),
        "start": st.integers(0, 150),
        "length": st.integers(1, 120),
    }
)


def _expected(
    d: dict[str, Any], first: dt.date, last: dt.date, this_month: dt.date
) -> list[tuple[dt.date, int, int, int]]:
    """The cohorts computed from the data set itself: (cohort, size, k, active)."""
    size: dict[dt.date, int] = defaultdict(int)
    active: dict[tuple[dt.date, dt.date], int] = defaultdict(int)
    for joined_n, bought in d["members"]:
        joined = BASE + dt.timedelta(days=joined_n)
        if not first <= joined <= last:
            continue
        cohort = first_of_month(joined)
        size[cohort] += 1
        for month in {first_of_month(BASE + dt.timedelta(days=b)) for b in bought}:
            if month >= cohort:
                active[(cohort, month)] += 1
    out = []
    cohort = first_of_month(first)
    while cohort <= first_of_month(last):
        for k in range(12):
            month = add_months(cohort, k)
            if month > this_month:
                break
            out.append((cohort, size[cohort], k, active[(cohort, month)]))
        cohort = add_months(cohort, 1)
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(d=data_set)
def test_a_cohorts_cells_never_exceed_its_size(
    program: Database, pinned: dt.datetime, d: dict[str, Any]
) -> None:
    # given members who joined and bought on random days, rolled up into member days and
    # cohort cells (as the rollup writes them)
    with program.session() as s:
        rollup.prepare(s)
        for table in (CohortCell, MemberDay, ReportMember):
            s.execute(delete(table))
        months = set()
        for i, (joined, bought) in enumerate(d["members"]):
            member = uuid.UUID(int=i + 1)
            s.add(
                ReportMember(
                    member_id=member,
                    joined_day=BASE + dt.timedelta(days=joined),
                    bucket=0,
                    number=i,
                )
            )
            for b in set(bought):
                day = BASE + dt.timedelta(days=b)
                months.add(first_of_month(day))
                s.add(
                    MemberDay(
                        day=day,
                        member_id=member,
                        store="s",
                        channel="pos",
                        tier="",
                        receipts=1,
                        revenue=Decimal("1.00"),
                    )
                )
        s.flush()
        rollup._redo_cohorts(s, months)
        s.commit()
        start = BASE + dt.timedelta(days=d["start"])
        f = reports.Filters(start, start + dt.timedelta(days=d["length"] - 1))
        # when the cohorts of a random period are computed
        rep = reports.run(s, "cohorts", f)
    # then every cell is at most its cohort's size, every share within [0, 1] ...
    for _cohort, size, _k, active, share in rep.rows:
        assert 0 <= active <= size
        assert share is None if size == 0 else Decimal(0) <= share <= Decimal(1)
    for value in rep.summary.values():
        assert value is None or Decimal(0) <= value <= Decimal(1)
    # ... and the figures are those of the data set, exactly
    this_month = first_of_month(PINNED.astimezone(dt.UTC).date())
    assert [tuple(r[:4]) for r in rep.rows] == _expected(d, f.start, f.end, this_month)
