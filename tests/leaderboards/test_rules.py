"""The leaderboards' pure parts, without a database: periods in a time zone, names shown,
what a receipt adds and a reversal takes back."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.leaderboards import names, periods, service
from kopilka.program.service import Program, parse_program
from kopilka.purchases.hooks import Reversed, Settled
from tests.leaderboards.conftest import LEADERBOARD_PROGRAM

MSK = "Europe/Moscow"
SPEC = parse_program(LEADERBOARD_PROGRAM)
PROGRAM = Program(1, "digest", SPEC)


@pytest.mark.parametrize(
    ("period", "at", "key"),
    [
        ("week", "2026-12-06T20:59:00+00:00", "2026-W49"),  # Sunday 23:59 in Moscow
        ("week", "2026-12-06T21:01:00+00:00", "2026-W50"),  # Monday 00:01 in Moscow
        ("day", "2026-12-06T21:01:00+00:00", "2026-12-07"),
        ("month", "2026-11-30T21:00:00+00:00", "2026-12"),
        ("week", "2027-01-01T12:00:00+00:00", "2026-W53"),  # ISO weeks cross the year
        ("all", "2026-12-06T21:01:00+00:00", "all"),
    ],
)
def test_the_period_of_a_moment_is_the_programmes_local_one(
    period: periods.Period, at: str, key: str
) -> None:
    assert periods.key_of(period, dt.datetime.fromisoformat(at), MSK) == key


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 1)),
    st.sampled_from(["day", "week", "month"]),
    st.sampled_from([MSK, "Asia/Vladivostok", "UTC", "America/New_York"]),
)
def test_a_moment_lies_within_the_bounds_of_its_period(
    naive: dt.datetime, period: periods.Period, tz: str
) -> None:
    at = naive.replace(tzinfo=dt.UTC)
    key = periods.key_of(period, at, tz)
    assert periods.parse(period, key) == key
    bounds = periods.bounds(period, key, tz)
    assert bounds is not None
    assert bounds[0] <= at < bounds[1]


def test_names_shown() -> None:
    assert names.masked_name("Анна Кузнецова", "2000000000017") == "Анна К."
    assert names.masked_name("Глеб", "2000000000017") == "Глеб"
    assert names.masked_name(None, "2000000000017") == "#0017"
    assert names.check_nickname("  Кот.Учёный 7 ") == "Кот.Учёный 7"
    assert names.nickname_key("Кот") == names.nickname_key("КОТ")
    for bad in ("ab", "x" * 21, "a<b>c", "_abc", "ab..c"):
        with pytest.raises(ValueError, match="nickname"):
            names.check_nickname(bad)


@given(
    total=st.decimals(min_value=0, max_value=10**9, places=2),
    earned=st.decimals(min_value=0, max_value=10**7, places=2),
    refund_share=st.fractions(min_value=0, max_value=1),
)
def test_a_cancel_takes_back_exactly_what_its_receipt_gave(
    total: Decimal, earned: Decimal, refund_share: object
) -> None:
    member = uuid.uuid4()
    at = dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC)
    given_ = service.settled_adds(
        SPEC, Settled(uuid.uuid4(), member, "msk-01", at, total, {"BONUS": earned}, PROGRAM)
    )
    taken = service.reversed_adds(
        SPEC,
        Reversed(
            uuid.uuid4(),
            member,
            "cancel",
            "k",
            total,
            "msk-01",
            at,
            PROGRAM,
            revoked={"BONUS": earned},
        ),
    )
    net: dict[str, Decimal] = {}
    for a in [*given_, *taken]:
        net[a.board.code] = net.get(a.board.code, Decimal(0)) + a.delta
    assert set(net.values()) <= {Decimal(0)}
    assert {a.board.code for a in given_} >= {"regulars", "store-day"}
