"""The buckets a rank sums on PostgreSQL: the trigger's function is the Python one, and a
rank is the same counted on the scores, on the buckets' additions and after they are
compacted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from kopilka.core.db import Database
from kopilka.leaderboards import buckets, service
from kopilka.leaderboards.models import LeaderboardBucket
from tests.leaderboards.conftest import Buy, Enrol, Join, board


def test_buckets_keep_two_significant_digits() -> None:
    assert [buckets.bucket_of(u) for u in (-5, 0, 7, 99, 100, 109, 110, 12_345_678)] == [
        0, 0, 7, 99, 100, 100, 110, 12_000_000,
    ]  # fmt: skip
    assert [buckets.bucket_end(u) for u in (-5, 0, 7, 99, 100, 12_345_678)] == [
        1, 1, 8, 100, 110, 13_000_000,
    ]  # fmt: skip


@given(st.integers(min_value=-(10**12), max_value=2**62))
def test_a_value_lies_in_its_bucket(units: int) -> None:
    start, end = buckets.bucket_of(units), buckets.bucket_end(units)
    assert start <= max(units, 0) < end or units <= 0


def test_the_triggers_function_is_the_python_one(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    values = [-3, 0, 1, 99, 100, 101, 999, 1000, 123_456, 10**15 + 7, 2**62]
    with db.session() as s:
        got = [s.execute(text("SELECT leaderboard_bucket(:v)"), {"v": v}).scalar() for v in values]
    assert got == [buckets.bucket_of(v) for v in values]


@pytest.mark.parametrize("probe", [20_000, 1, 2, 3])
def test_ranks_are_the_same_before_and_after_the_buckets_are_compacted(
    client: TestClient,
    db: Database,
    admin: dict[str, str],
    enrol: Enrol,
    buy: Buy,
    join: Join,
    probe: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (``probe``: how far a rank counts one side of the member's bucket before the other;
    # small, every way of counting is taken: ahead, behind, and the whole side ahead)
    monkeypatch.setattr(service, "TIE_PROBE", probe)
    # given eight members shown, spending 100, 150, 150, 1000 … (ties and buckets apart)
    amounts = ["100", "150", "150", "1000", "1099", "1100", "5", "150", "150", "1010"]
    people = []
    for i, amount in enumerate(amounts):
        m = enrol(name=f"Member{i} X")
        join(m)
        buy(f"R-{i}", m["card_number"], amount, at=f"2026-12-07T{1 + i:02d}:00:00+03:00")
        people.append(m)
    # and one moving from its bucket (150 → 1150) and one hidden again
    buy("R-X", people[2]["card_number"], "1000")
    join(people[7], opted_in=False)
    expected = {0: 8, 1: 6, 2: 1, 3: 5, 4: 3, 5: 2, 6: 9, 7: None, 8: 7, 9: 4}
    ranks = {
        i: (board(client, admin, "spenders", member=m["id"])["member"] or {}).get("rank")
        for i, m in enumerate(people)
    }
    assert ranks == expected
    # when the buckets' additions are compacted
    with db.session() as s:
        folded = service.compact(s)
        s.commit()
        rows = s.scalar(select(func.count()).select_from(LeaderboardBucket))
    # then the ranks are the same
    after = {
        i: (board(client, admin, "spenders", member=m["id"])["member"] or {}).get("rank")
        for i, m in enumerate(people)
    }
    assert after == expected
    if db.dialect == "postgresql":
        assert folded > 0
        assert rows is not None and rows < 30
