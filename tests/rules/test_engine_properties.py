"""Properties of the rules engine over random receipts and rule sets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.rules import engine
from tests.rules.helpers import line, member, program, receipt, run

CATS = ["dairy", "grocery", "bakery", None]
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)
qtys = st.one_of(
    st.integers(min_value=1, max_value=20).map(Decimal),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("5"), places=3),  # by weight
)
lines = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "D"]), prices, qtys, st.sampled_from(CATS)),
    min_size=1,
    max_size=12,
)
percents = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("60"), places=1)
amounts = st.decimals(min_value=Decimal("1"), max_value=Decimal("300"), places=2)


def _when(cat: str | None) -> dict[str, Any]:
    return {"when": {"lines": {"categories": [cat]}}} if cat else {}


per_line_rule = st.one_of(
    st.builds(
        lambda p, c: {"earn": {"currency": "BONUS", "percent": str(p)}, **_when(c)},
        percents,
        st.sampled_from(CATS),
    ),
    st.builds(
        lambda a, per, c: {"earn": {"currency": "BONUS", "amount": str(a), "per": per}, **_when(c)},
        amounts,
        st.sampled_from(["line", "unit"]),
        st.sampled_from(CATS),
    ),
    st.builds(
        lambda p, c: {"discount": {"percent": str(p)}, **_when(c)}, percents, st.sampled_from(CATS)
    ),
    st.builds(
        lambda a, per, c: {"discount": {"amount": str(a), "per": per}, **_when(c)},
        amounts,
        st.sampled_from(["line", "unit"]),
        st.sampled_from(CATS),
    ),
    st.builds(
        lambda f, c: {"multiply": {"factor": str(f)}, **_when(c)},
        st.decimals(min_value=Decimal("1.1"), max_value=Decimal("5"), places=1),
        st.sampled_from(CATS),
    ),
)
any_rule = st.one_of(
    per_line_rule,
    st.builds(lambda a: {"discount": {"amount": str(a)}}, amounts),
    st.builds(lambda a: {"reward": {"currency": "BONUS", "amount": str(a)}}, amounts),
    st.builds(lambda a: {"earn": {"currency": "BONUS", "amount": str(a)}}, amounts),
)


def _named(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": f"R{i}", **r} for i, r in enumerate(rules)]


def _lines(raw: list[tuple[str, Decimal, Decimal, str | None]]) -> list[engine.LineIn]:
    return [line(sku, str(p), str(q), c) for sku, p, q, c in raw]


@settings(max_examples=150, deadline=None)
@given(lines, st.lists(per_line_rule, min_size=1, max_size=6))
def test_per_line_rules_on_a_receipt_equal_the_sum_of_its_lines(
    raw: list[tuple[str, Decimal, Decimal, str | None]], rules_raw: list[dict[str, Any]]
) -> None:
    # given rules that act line by line, and a random receipt
    rules = program(_named(rules_raw))
    ls = _lines(raw)
    m = member()
    # when the receipt is evaluated whole, and each line as a receipt of its own
    p, e, _ = run(rules, receipt(*ls, member=m))
    for i, ln in enumerate(ls):
        p1, e1, _ = run(rules, receipt(ln, member=m))
        # then each line's discount and points are the same either way
        assert p.line_discounts[i] == p1.line_discounts[0]
        for code, per in e.earned.items():
            assert per[i] == e1.earned.get(code, [Decimal(0)])[0]


@settings(max_examples=150, deadline=None)
@given(lines, st.lists(any_rule, min_size=1, max_size=8))
def test_discounts_never_exceed_a_line_and_per_line_figures_add_up(
    raw: list[tuple[str, Decimal, Decimal, str | None]], rules_raw: list[dict[str, Any]]
) -> None:
    rules = program(_named(rules_raw))
    ls = _lines(raw)
    p, e, paid = run(rules, receipt(*ls, member=member()))
    for ln, d, money in zip(ls, p.line_discounts, paid, strict=True):
        assert Decimal(0) <= d <= ln.amount
        assert money >= 0
        assert d == d.quantize(Decimal("0.01"))
    # what each applied rule reports equals what it put on the lines
    assert sum((a.amount or 0 for a in p.applied if a.effect == "discount"), Decimal(0)) == sum(
        p.line_discounts, Decimal(0)
    )
    total_points = sum((a.amount or 0 for a in e.applied), Decimal(0))
    assert total_points == sum((sum(v, Decimal(0)) for v in e.earned.values()), Decimal(0))
    for per in e.earned.values():
        assert all(x >= 0 and x == x.quantize(Decimal("0.01")) for x in per)
