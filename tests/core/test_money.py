"""Exact amounts: conversion to stored units and rounding."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.core.money import (
    AmountError,
    fmt,
    from_units,
    plain,
    round_down,
    to_decimal,
    to_units,
)

amounts = st.decimals(
    min_value=Decimal("-1e12"),
    max_value=Decimal("1e12"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts)
def test_units_round_trip(value: Decimal) -> None:
    assert from_units(to_units(value)) == value


@given(amounts, st.integers(min_value=0, max_value=4))
def test_round_down_never_exceeds_and_is_within_one_quantum(value: Decimal, p: int) -> None:
    r = round_down(value, p)
    q = Decimal(1).scaleb(-p)
    assert abs(r) <= abs(value)
    assert abs(value - r) < q


def test_to_units_refuses_more_places() -> None:
    with pytest.raises(AmountError):
        to_units(Decimal("0.00001"))


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", "1e400", ""])
def test_to_decimal_refuses_nonsense(raw: str) -> None:
    with pytest.raises(AmountError):
        to_decimal(raw)


def test_fmt() -> None:
    assert fmt(Decimal("199.9"), 2) == "199.90"
    assert fmt(Decimal("5"), 0) == "5"


def test_to_units_refuses_what_a_bigint_cannot_hold() -> None:
    # given the largest amount a BIGINT of 1/10 000 holds, and the next unit up
    largest = Decimal("922337203685477.5807")
    # when converted; then the first is stored as is and the next is refused here, as an
    # amount, rather than overflowing in the database (regression: it was let through
    # up to 1e15, and PostgreSQL answered "bigint out of range" as a 500)
    assert to_units(largest) == 2**63 - 1
    assert to_units(-largest) == -(2**63 - 1)
    with pytest.raises(AmountError):
        to_units(largest + Decimal("0.0001"))
    with pytest.raises(AmountError):
        to_units(Decimal("999999999999999"))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("10", "10"),
        ("1E+1", "10"),
        ("1E+2", "100"),
        ("2E+1", "20"),
        ("2.500", "2.5"),
        ("0.125", "0.125"),
        ("1.000", "1"),
        ("-0.000", "0"),
        ("0E-7", "0"),
        ("12345678901234567890123456789.5", "12345678901234567890123456789.5"),
    ],
)
def test_plain_writes_a_decimal_without_exponent_or_trailing_zeros(value: str, text: str) -> None:
    assert plain(Decimal(value)) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_plain_is_exact_and_never_in_exponent_notation(value: Decimal) -> None:
    # given any finite decimal, however written (1E+1, 2.500, 0E-9)
    text = plain(value)
    # then it reads back as the same number, in digits only, with no zero it does not need
    assert Decimal(text) == value
    assert re.fullmatch(r"-?(0|[1-9]\d*)(\.\d*[1-9])?", text), text
