"""A currency's fixed last day (``expires_on``): every lot of it expires after that day."""

from __future__ import annotations

import datetime as dt

from kopilka.ledger.service import lot_times
from kopilka.spec.program import CurrencySpec

UTC = dt.UTC


def test_every_lot_expires_after_the_season_whenever_earned() -> None:
    # given stickers of a season ending on 31 March (Moscow)
    cur = CurrencySpec(code="STICKER", name="S", precision=0, value=0, expires_on="2027-03-31")
    # when stickers are earned in January and on the last day
    for earned in (
        dt.datetime(2027, 1, 5, 9, tzinfo=UTC),
        dt.datetime(2027, 3, 31, 20, tzinfo=UTC),
    ):
        available, expires = lot_times(cur, earned, "Europe/Moscow")
        # then they are available at once and expire at Moscow midnight after 31 March
        assert available == earned
        assert expires == dt.datetime(2027, 3, 31, 21, tzinfo=UTC)


def test_the_earlier_of_the_season_and_the_lots_own_life() -> None:
    cur = CurrencySpec(
        code="STICKER",
        name="S",
        precision=0,
        value=0,
        expires_after_days=10,
        expires_on="2027-03-31",
    )
    early = lot_times(cur, dt.datetime(2027, 1, 5, 9, tzinfo=UTC), "Europe/Moscow")[1]
    late = lot_times(cur, dt.datetime(2027, 3, 30, 9, tzinfo=UTC), "Europe/Moscow")[1]
    assert early == dt.datetime(2027, 1, 15, 21, tzinfo=UTC)
    assert late == dt.datetime(2027, 3, 31, 21, tzinfo=UTC)
