"""Exact splits across lines (pure)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from decimal import Decimal as D

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kopilka.core.split import _allocate_in_integers, allocate, prorate

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


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=0, max_value=100000, places=2),
    st.lists(st.decimals(min_value=0, max_value=100000, places=4), min_size=1, max_size=25),
    st.sampled_from([0, 2, 4]),
)
def test_the_integer_split_equals_the_decimal_split(
    total: Decimal, weights: list[Decimal], precision: int
) -> None:
    # given any total at the precision and non-negative weights with some weight
    total = total.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_DOWN)
    assume(sum(weights) > 0)
    # when split by the integer fast path and by the plain Decimal largest-remainder rule
    fast = _allocate_in_integers(total, weights, precision)
    q = Decimal(1).scaleb(-precision)
    exact = [total * w / sum(weights) for w in weights]
    parts = [e.quantize(q, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts)) / q)
    for i in sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))[:left]:
        parts[i] += q
    # then both give the same parts, which add up to the total
    assert fast == parts
    assert sum(fast) == total
