"""The challenges' pure arithmetic (``challenges/progress.py``): periods in a time zone,
a receipt's contribution and what a return leaves of it, distinct counts, ladders and
streaks with grace. No database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kopilka.challenges import progress as p
from kopilka.spec.challenges import ChallengeSpec, GoalSpec, PeriodSpec

MSK = "Europe/Moscow"
D = Decimal


def _goal(**kw: Any) -> GoalSpec:
    return GoalSpec.model_validate(kw)


def _challenge(**kw: Any) -> ChallengeSpec:
    base: dict[str, Any] = {"code": "c", "name": {"ru": "Ч", "en": "C"}}
    return ChallengeSpec.model_validate(base | kw)


def _receipt(
    *lines: tuple[str, str | None, str, str], paid: str | None = None, store: str = "msk-01"
) -> p.Receipt:
    ls = tuple(p.Line(i + 1, sku, cat, D(q), D(m)) for i, (sku, cat, q, m) in enumerate(lines))
    total = D(paid) if paid is not None else sum((ln.paid for ln in ls), D(0))
    return p.Receipt(store, "pos", total, dt.date(2026, 12, 7), ls)


def test_sunday_2359_and_monday_0001_in_moscow_are_different_weeks() -> None:
    # given a weekly period in Europe/Moscow (UTC+3)
    week = PeriodSpec.model_validate({"every": "week"})
    sunday = dt.datetime(2026, 12, 6, 20, 59, tzinfo=dt.UTC)  # 23:59 Sunday in Moscow
    monday = dt.datetime(2026, 12, 6, 21, 1, tzinfo=dt.UTC)  # 00:01 Monday in Moscow
    # when their windows are taken
    a = p.window(week, sunday, MSK)
    b = p.window(week, monday, MSK)
    # then they are two ISO weeks, split at Moscow's midnight
    assert a == p.Window(
        "2026-W49",
        dt.datetime(2026, 11, 29, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 21, 0, tzinfo=dt.UTC),
    )
    assert b is not None and b.key == "2026-W50" and b.start == a.end


def test_day_month_fixed_join_and_open_periods() -> None:
    at = dt.datetime(2026, 12, 31, 21, 30, tzinfo=dt.UTC)  # 00:30 on 1 January in Moscow
    assert p.window(PeriodSpec.model_validate({"every": "day"}), at, MSK) == p.Window(
        "2027-01-01",
        dt.datetime(2026, 12, 31, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, 21, 0, tzinfo=dt.UTC),
    )
    month = p.window(PeriodSpec.model_validate({"every": "month"}), at, MSK)
    assert month is not None and month.key == "2027-01"
    assert month.end == dt.datetime(2027, 1, 31, 21, 0, tzinfo=dt.UTC)
    fixed = PeriodSpec.model_validate({"from": "2026-12-01", "to": "2026-12-31"})
    assert p.window(fixed, at, MSK) is None  # 1 January is after it
    assert p.window(fixed, at - dt.timedelta(hours=1), MSK) == p.Window(
        "fixed",
        dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 21, 0, tzinfo=dt.UTC),
    )
    days = PeriodSpec.model_validate({"days": 7})
    joined = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    assert p.window(days, joined, MSK, None) is None
    assert p.window(days, joined + dt.timedelta(days=6), MSK, joined) == p.Window(
        "join", joined, joined + dt.timedelta(days=7)
    )
    assert p.window(days, joined + dt.timedelta(days=7), MSK, joined) is None
    assert p.window(None, at, MSK) == p.Window("all", None, None)


def test_contributions_of_each_kind() -> None:
    r = _receipt(
        ("LATTE", "coffee", "2", "300.00"),
        ("CAKE", "bakery", "1", "150.50"),
        ("ESPRESSO", "coffee", "1", "90.00"),
    )
    coffee = {"lines": {"categories": ["coffee"]}}
    assert p.contribution(_goal(count="purchases", target=5, where=coffee), r) == p.Contribution(
        D(1)
    )
    assert p.contribution(_goal(count="paid", target=1000, where=coffee), r).value == D("390.00")
    assert p.contribution(_goal(count="paid", target=1000), r).value == D("540.50")
    assert p.contribution(_goal(count="units", target=9, where=coffee), r).value == D(3)
    assert p.contribution(
        _goal(count="units", target=9, where={"lines": {"skus": ["CAKE"]}}), r
    ).value == D(1)
    assert p.contribution(_goal(count="days", target=3), r) == p.Contribution(D(1), ("2026-12-07",))
    assert p.contribution(_goal(count="categories", target=3), r) == p.Contribution(
        D(2), ("bakery", "coffee")
    )
    # conditions that refuse the receipt
    assert (
        p.contribution(
            _goal(count="purchases", target=1, where={"lines": {"categories": ["tea"]}}), r
        )
        == p.NOTHING
    )
    assert (
        p.contribution(_goal(count="purchases", target=1, where={"min_receipt": "540.51"}), r)
        == p.NOTHING
    )
    assert p.contribution(
        _goal(count="purchases", target=1, where={"min_receipt": "540.50"}), r
    ).value == D(1)
    assert (
        p.contribution(_goal(count="purchases", target=1, where={"stores": ["msk-02"]}), r)
        == p.NOTHING
    )
    assert (
        p.contribution(_goal(count="purchases", target=1, where={"channels": ["online"]}), r)
        == p.NOTHING
    )
    assert (
        p.contribution(_goal(count="events", target=1, where={"event_type": "x"}), r) == p.NOTHING
    )


def test_a_return_leaves_what_is_left() -> None:
    # given a receipt of two coffees and a cake, and a return of one coffee and the cake
    r = _receipt(("LATTE", "coffee", "2", "300.00"), ("CAKE", "bakery", "1", "150.00"))
    left = p.after_return(r, {1: (D(1), D("150.00")), 2: (D(1), D("150.00"))})
    # then one coffee is left, paid 150
    assert left.lines == (p.Line(1, "LATTE", "coffee", D(1), D("150.00")),)
    assert left.paid == D("150.00")
    assert (
        p.contribution(_goal(count="purchases", target=1, where={"min_receipt": "200"}), left)
        == p.NOTHING
    )
    assert p.contribution(_goal(count="categories", target=2), left).tokens == ("coffee",)


def test_distinct_values_count_tokens_of_contributions_that_still_count() -> None:
    goal = _goal(count="days", target=3)
    cs = [
        p.Contribution(D(1), ("2026-12-07",)),
        p.Contribution(D(1), ("2026-12-07",)),
        p.Contribution(D(0), ("2026-12-08",)),  # its receipt was returned
        p.Contribution(D(1), ("2026-12-09",)),
    ]
    assert p.value_of(goal, cs) == D(2)
    assert p.value_of(_goal(count="purchases", target=3), cs) == D(3)


def test_a_ladder_3_5_10() -> None:
    targets = [D(3), D(5), D(10)]
    assert [p.steps_reached(targets, D(v)) for v in (0, 2, 3, 4, 5, 9, 10, 11)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_a_streak_uses_its_grace_week() -> None:
    # given a streak of 4 weeks with one grace week
    c = _challenge(
        goal={"count": "purchases"},
        streak={"every": "week", "length": 4, "grace": 1},
        reward={"badge": "b"},
    )
    mondays = [dt.date(2026, 11, 2) + dt.timedelta(weeks=k) for k in range(8)]
    r = [
        p.Receipt("s", "pos", D(100), day, (p.Line(1, "X", None, D(1), D(100)),)) for day in mondays
    ]
    # when purchases fall in weeks 0, 1, 3, 4 (week 2 missed)
    cs = [p.receipt_contribution(c, r[k], MSK) for k in (0, 1, 3, 4)]
    # then the run is 4 (the grace forgives week 2) and the streak is complete
    assert p.progress(c, cs) == D(4)
    assert (
        p.status(
            c,
            p.progress(c, cs),
            p.Window("all", None, None),
            dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        )
        == "completed"
    )
    # but two misses break it: weeks 0, 2, 4, 5
    cs2 = [p.receipt_contribution(c, r[k], MSK) for k in (0, 2, 4, 5)]
    assert p.progress(c, cs2) == D(3)


def test_a_streaks_unit_needs_its_target() -> None:
    c = _challenge(
        goal={"count": "purchases", "target": 2},
        streak={"every": "day", "length": 2},
        reward={"badge": "b"},
    )
    day = dt.date(2026, 12, 7)
    one = p.Receipt("s", "pos", D(1), day, (p.Line(1, "X", None, D(1), D(1)),))
    nxt = p.Receipt("s", "pos", D(1), day + dt.timedelta(days=1), one.lines)
    cs = [
        p.receipt_contribution(c, one, MSK),
        p.receipt_contribution(c, nxt, MSK),
        p.receipt_contribution(c, nxt, MSK),
    ]
    assert p.progress(c, cs) == D(1)  # the first day had one purchase of two
    cs.append(p.receipt_contribution(c, one, MSK))
    assert p.progress(c, cs) == D(2)


def test_events_referrals_and_audience() -> None:
    ev = _challenge(
        goal={"count": "events", "target": 2, "where": {"event_type": "recycled"}},
        reward={"badge": "b"},
    )
    day = dt.date(2026, 12, 7)
    assert p.event_contribution(ev, "recycled", day) == p.Contribution(D(1))
    assert p.event_contribution(ev, "other", day) == p.NOTHING
    ref = _challenge(goal={"count": "referrals", "target": 2}, reward={"badge": "b"})
    assert p.referral_contribution(ref, day) == p.Contribution(D(1))
    assert p.referral_contribution(ev, day) == p.NOTHING
    gold = _challenge(
        goal={"count": "purchases", "target": 1},
        reward={"badge": "b"},
        audience={"tiers": ["gold"], "tags": ["eco"]},
    )
    assert p.in_audience(gold, p.Audience("gold", frozenset({"eco", "x"})))
    assert not p.in_audience(gold, p.Audience("gold", frozenset()))
    assert not p.in_audience(gold, p.Audience(None, frozenset({"eco"})))
    assert p.in_audience(ev, p.Audience(None, frozenset()))


def _run_by_brute_force(units: set[int], grace: int) -> int:
    best = 0
    for a in units:
        for b in units:
            if b < a:
                continue
            met = len([u for u in units if a <= u <= b])
            if (b - a + 1) - met <= grace:
                best = max(best, met)
    return best


@given(st.sets(st.integers(0, 40), max_size=15), st.integers(0, 3))
def test_best_run_is_the_longest_run_within_grace(units: set[int], grace: int) -> None:
    assert p.best_run(units, grace) == _run_by_brute_force(units, grace)


money = st.decimals(min_value=0, max_value=10_000, places=2)
qty = st.integers(1, 5)


@given(st.lists(st.tuples(qty, money, st.booleans()), min_size=1, max_size=6), st.data())
def test_a_return_never_leaves_more_and_a_full_return_leaves_nothing(
    spec: list[tuple[int, Decimal, bool]], data: st.DataObject
) -> None:
    lines = tuple(
        p.Line(i + 1, f"S{i}", "coffee" if c else "tea", D(q), m)
        for i, (q, m, c) in enumerate(spec)
    )
    r = p.Receipt("s", "pos", sum((ln.paid for ln in lines), D(0)), dt.date(2026, 12, 7), lines)
    goals = [
        _goal(count=k, target=1, where={"lines": {"categories": ["coffee"]}})
        for k in ("purchases", "paid", "units", "categories")
    ]
    returned = {
        ln.line_no: (D(n), (ln.paid * n / ln.quantity).quantize(D("0.01")))
        for ln in lines
        for n in [data.draw(st.integers(0, int(ln.quantity)))]
    }
    left = p.after_return(r, returned)
    everything = p.after_return(r, {ln.line_no: (ln.quantity, ln.paid) for ln in lines})
    for g in goals:
        assert p.contribution(g, left).value <= p.contribution(g, r).value
        assert p.contribution(g, everything) == p.NOTHING
