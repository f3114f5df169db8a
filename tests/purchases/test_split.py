"""Exact splits across lines (pure)."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from kopilka.purchases.split import allocate, prorate

money = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)


@given(st.lists(money, min_size=1, max_size=30), st.data())
def test_allocate_sums_exactly_and_stays_within_weights(
    weights: list[D], data: st.DataObject
) -> None:
    total = data.draw(st.decimals(min_value=D(0), max_value=sum(weights), places=2))
    parts = allocate(total, weights, 2)
    assert sum(parts) == total
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))
    # each part is within one cent of its exact share
    s = sum(weights)
    assert all(abs(p - total * w / s) < D("0.01") for p, w in zip(parts, weights, strict=True))


def test_allocate_worked_example() -> None:
    assert allocate(D("314.90"), [D("179.80"), D("450.00")], 2) == [D("89.90"), D("225.00")]


def test_allocate_remainder_goes_to_largest_fraction_then_first() -> None:
    assert allocate(D("0.02"), [D(1), D(1), D(1)], 2) == [D("0.01"), D("0.01"), D("0")]
    assert allocate(D("10"), [D(1), D(1), D(1)], 0) == [D(4), D(3), D(3)]


@given(money, st.lists(st.integers(1, 5), min_size=1, max_size=8))
def test_prorate_in_pieces_adds_up_to_the_whole(full: D, pieces: list[int]) -> None:
    whole = D(sum(pieces))
    done = D(0)
    got = D(0)
    for piece in pieces:
        got += prorate(full, done + piece, whole, 2) - prorate(full, done, whole, 2)
        done += piece
    assert got == full
