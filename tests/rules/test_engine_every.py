"""Earning ``amount`` per full ``every`` of money paid (stickers): pure engine."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.core.errors import Problem
from tests.rules.helpers import earned, line, member, program, receipt, run

STICKERS = {"name": "Stickers", "earn": {"currency": "STAMP", "amount": "1", "every": "300"}}


def test_one_sticker_per_full_300_paid_after_discounts() -> None:
    # given one sticker per full 300 and a 10 % discount
    rules = program([{"name": "Ten off", "discount": {"percent": "10"}}, STICKERS])
    # when a 700 receipt (630 paid after the discount) is figured
    _, e, paid = run(rules, receipt(line("A", "400.00"), line("B", "300.00"), member=member()))
    # then 2 stickers (630 // 300), spread over the lines in proportion to the money paid
    assert paid == [Decimal("360.00"), Decimal("270.00")]
    assert earned(e, "STAMP") == ["1", "1"]
    assert e.applied[-1].amount == Decimal(2)
    assert e.applied[-1].reason == "1 per full 300 paid"


def test_a_650_receipt_gives_two_and_a_299_receipt_none() -> None:
    rules = program([STICKERS])
    _, e, _ = run(rules, receipt(line("A", "650.00"), member=member()))
    assert earned(e, "STAMP") == ["2"]
    _, e, _ = run(rules, receipt(line("A", "299.99"), member=member()))
    assert e.earned == {}


def test_sponsor_skus_give_extra_stickers_per_unit() -> None:
    # given stickers per 300 and 2 extra per unit of a sponsor's product
    rules = program(
        [
            STICKERS,
            {
                "name": "Sponsor",
                "when": {"lines": {"skus": ["JUICE"]}},
                "earn": {"currency": "STAMP", "amount": "2", "per": "unit"},
            },
        ]
    )
    # when a receipt of 320 has 3 juices
    _, e, _ = run(rules, receipt(line("A", "200.00"), line("JUICE", "40.00", "3"), member=member()))
    # then 1 for the full 300 (on the bigger line) and 6 for the juices
    assert earned(e, "STAMP") == ["1", "6"]


@pytest.mark.parametrize(
    "earn",
    [
        {"currency": "STAMP", "percent": "1", "every": "300"},
        {"currency": "STAMP", "amount": "1", "per": "line", "every": "300"},
        {"currency": "STAMP", "amount": "1", "every": "0"},
    ],
)
def test_every_goes_only_with_an_amount_per_receipt(earn: dict[str, str]) -> None:
    with pytest.raises(Problem) as exc:
        program([{"name": "Bad", "earn": earn}])
    assert exc.value.status == 422


@given(
    prices=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2),
        min_size=1,
        max_size=6,
    ),
    every=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2),
)
def test_stickers_are_the_full_multiples_of_every_exactly(
    prices: list[Decimal], every: Decimal
) -> None:
    rules = program(
        [{"name": "S", "earn": {"currency": "STAMP", "amount": "1", "every": str(every)}}]
    )
    ctx = receipt(*(line(f"S{i}", str(p)) for i, p in enumerate(prices)), member=member())
    _, e, paid = run(rules, ctx)
    got = sum(e.earned.get("STAMP", [Decimal(0)]), Decimal(0))
    assert got == sum(paid, Decimal(0)) // every
