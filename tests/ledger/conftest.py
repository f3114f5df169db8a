"""Helpers for ledger tests: members and a controllable clock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from kopilka.core.db import Database
from kopilka.members.models import Member
from tests.conftest import Clock

__all__ = ["Clock", "MakeMember"]

MakeMember = Callable[[], uuid.UUID]


@pytest.fixture
def make_member(program: Database) -> MakeMember:
    counter = iter(range(10_000))

    def make() -> uuid.UUID:
        i = next(counter)
        with program.session() as s:
            m = Member(
                card_number=f"77{uuid.uuid4().int % 10**11:011d}",
                referral_code=uuid.uuid4().hex[:10].upper(),
                phone=f"+7916{i:07d}",
            )
            s.add(m)
            s.commit()
            return m.id

    return make


@pytest.fixture
def clock_start() -> dt.datetime:
    """The ledger's tests start on 1 March (their programme's dates are written for it)."""
    return dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
