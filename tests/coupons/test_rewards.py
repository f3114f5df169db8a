"""What a coupon gives (pure): exact splits, never below zero."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from kopilka.coupons import rewards
from kopilka.coupons.rewards import Line, Reward

money = st.integers(min_value=0, max_value=10_000_00).map(lambda c: D(c) / 100)
line = st.builds(
    Line,
    sku=st.sampled_from(["A", "B", "C"]),
    category=st.sampled_from([None, "x", "y"]),
    quantity=st.integers(1, 5).map(D),
    unit_price=money,
)
reward = st.one_of(
    st.builds(
        Reward,
        kind=st.just("percent"),
        value=st.integers(1, 100).map(D),
        max_discount=st.one_of(st.none(), money),
        skus=st.sets(st.sampled_from(["A", "B", "C"]), max_size=2).map(frozenset),
    ),
    st.builds(
        Reward,
        kind=st.just("fixed"),
        value=money.filter(lambda m: m > 0),
        categories=st.sets(st.sampled_from(["x", "y"]), max_size=1).map(frozenset),
    ),
    st.builds(
        Reward,
        kind=st.just("free_product"),
        free_sku=st.sampled_from(["A", "B"]),
        free_quantity=st.integers(1, 3).map(D),
    ),
)


@given(st.lists(line, min_size=1, max_size=6), st.lists(reward, min_size=1, max_size=4), st.data())
def test_coupons_in_a_row_never_discount_a_line_below_zero(
    lines: list[Line], rs: list[Reward], data: st.DataObject
) -> None:
    # given what the rules left on each line (at most the line's amount)
    left = [
        data.draw(st.integers(0, int(ln.quantity * ln.unit_price * 100)).map(lambda c: D(c) / 100))
        for ln in lines
    ]
    start = list(left)
    total = D(0)
    for r in rs:
        effect = rewards.apply(r, lines, left, {})
        for i, d in enumerate(effect.discounts):
            assert D(0) <= d <= left[i]
            assert d == d.quantize(D("0.01"))
            left[i] -= d
        total += effect.discount
    assert all(x >= 0 for x in left)
    assert sum(start) - sum(left) == total


@given(st.lists(money, min_size=1, max_size=8), st.integers(1, 100))
def test_percent_is_rounded_down_and_split_exactly(left: list[D], pct: int) -> None:
    lines = [Line("A", None, D(1), x) for x in left]
    effect = rewards.apply(Reward("percent", D(pct)), lines, left, {})
    base = sum((x for x in left if x > 0), D(0))
    assert effect.discount == (base * pct / 100).quantize(D("0.01"), rounding="ROUND_DOWN")


@given(st.lists(money, min_size=1, max_size=8), st.integers(1, 10_000))
def test_points_are_split_exactly(left: list[D], points: int) -> None:
    lines = [Line("A", None, D(1), x) for x in left]
    effect = rewards.apply(Reward("points", D(points), "BONUS"), lines, left, {"BONUS": 0})
    if sum(left) == 0:
        assert effect.points == {}
    else:
        per_line = effect.points["BONUS"]
        assert sum(per_line) == points
        assert all(p == p.to_integral() for p in per_line)
        assert all(p == 0 for p, x in zip(per_line, left, strict=True) if x == 0)


def test_free_product_takes_only_the_units_given() -> None:
    lines = [Line("A", None, D(3), D("10.00")), Line("A", None, D(1), D("10.00"))]
    # two units free over two lines carrying the product: three on the first line
    effect = rewards.apply(
        Reward("free_product", free_sku="A", free_quantity=D(2)),
        lines,
        [D("30.00"), D("10.00")],
        {},
    )
    assert effect.discounts == [D("20.00"), D("0")]
    assert effect.free_lines == [0]
    # four free: the whole first line and the second
    effect = rewards.apply(
        Reward("free_product", free_sku="A", free_quantity=D(4)),
        lines,
        [D("30.00"), D("10.00")],
        {},
    )
    assert effect.discounts == [D("30.00"), D("10.00")]
    assert effect.free_lines == [0, 1]


def test_allocate_is_exact_and_prefers_larger_remainders() -> None:
    assert rewards.allocate(D("1.00"), [D(1), D(1), D(1)], 2) == [D("0.34"), D("0.33"), D("0.33")]
    assert rewards.allocate(D("0"), [D(1)], 2) == [D("0")]
    assert rewards.allocate(D("5"), [D(0), D(0)], 2) == [D("0"), D("0")]
