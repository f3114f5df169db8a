"""The arithmetic of the console's challenge report, without a database: the bands of spend
before (deciles), and the comparison of participants with comparable non-participants
(hypothesis: like with like gives no difference; a constant added to every participant's
spend is the difference; the groups' sizes add up)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from kopilka.challenges.console_report import Spend, band_of, compare

money = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


def test_bands_are_deciles_of_those_who_spent_and_zero_for_the_others() -> None:
    positive = sorted(Decimal(v) for v in range(1, 101))  # 1 … 100
    assert band_of(Decimal(0), positive) == 0
    assert [band_of(Decimal(v), positive) for v in (1, 10, 11, 50, 91, 100)] == [1, 1, 2, 5, 10, 10]
    # equal spends share a band; nobody spent: band 0
    assert band_of(Decimal(5), [Decimal(5)] * 7) == 1
    assert band_of(Decimal(5), []) == 0


@given(st.lists(money.filter(lambda v: v > 0), min_size=1, max_size=60), money)
def test_a_band_never_falls_as_spend_rises(values: list[Decimal], extra: Decimal) -> None:
    positive = sorted(values)
    bands = [band_of(v, positive) for v in positive]
    assert bands == sorted(bands) and all(1 <= b <= 10 for b in bands)
    assert band_of(positive[-1] + extra, positive) >= bands[-1]


def _ids(n: int, start: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=start + i) for i in range(n)]


@given(
    st.lists(st.tuples(st.integers(0, 10), money), min_size=1, max_size=30),
    money,
)
def test_like_with_like_differs_by_what_was_added(
    members: list[tuple[int, Decimal]], added: Decimal
) -> None:
    # given each non-participant mirrored by a participant of the same band, who spent
    # ``added`` more in the period
    others = _ids(len(members), 1_000)
    mine = _ids(len(members), 2_000)
    during = {o: paid for o, (_, paid) in zip(others, members, strict=True)}
    during |= {p: paid + added for p, (_, paid) in zip(mine, members, strict=True)}
    band = {o: b for o, (b, _) in zip(others, members, strict=True)}
    band |= {p: b for p, (b, _) in zip(mine, members, strict=True)}
    # when they are compared
    got = compare(Spend(during, band), set(mine))
    # then everyone is matched, and the difference is what was added (to the cent)
    assert (got["participants"], got["matched"], got["unmatched"], got["comparable"]) == (
        len(mine),
        len(mine),
        0,
        len(others),
    )
    assert Decimal(got["difference"]) == added


@given(st.lists(st.tuples(st.integers(0, 10), money, st.booleans()), max_size=40))
def test_matched_and_unmatched_participants_add_up(
    members: list[tuple[int, Decimal, bool]],
) -> None:
    ids = _ids(len(members), 1)
    during = {m: paid for m, (_, paid, _) in zip(ids, members, strict=True)}
    band = {m: b for m, (b, _, _) in zip(ids, members, strict=True)}
    taking_part = {m for m, (_, _, p) in zip(ids, members, strict=True) if p}
    got = compare(Spend(during, band), taking_part)
    assert got["matched"] + got["unmatched"] == len(taking_part)
    assert got["comparable"] <= len(ids) - len(taking_part)
    # a difference exactly when someone was matched
    assert (got["difference"] is None) == (got["matched"] == 0)
