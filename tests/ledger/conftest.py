"""Helpers for ledger tests: members and a controllable clock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator

import pytest

from kopilka.core.db import Database
from kopilka.members.models import Member

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


class Clock:
    """Moves ``kopilka.core.db.now`` (and every module that imported it) in tests."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at = self.at + dt.timedelta(**kw)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    import kopilka.core.db as core_db
    import kopilka.ledger.service as ledger_service

    monkeypatch.setattr(core_db, "now", c)
    monkeypatch.setattr(ledger_service, "now", c)
    yield c
