"""Helpers for coupon tests: pools, members and receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database
from kopilka.coupons import issue, pools
from kopilka.coupons.models import Coupon, CouponPool
from kopilka.coupons.schemas import ImportIn, PoolIn
from kopilka.members.models import Member
from kopilka.rules.engine import LineIn, MemberContext, ReceiptContext

NOW = dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC)

MILK = ("MILK-1L", "dairy", "2", "89.90")  # 179.80
COFFEE = ("COFFEE-250", "grocery", "1", "450.00")
CHEESE = ("CHEESE-200", "dairy", "3", "199.99")  # 599.97


def lines(*specs: tuple[str, str, str, str]) -> tuple[LineIn, ...]:
    out = []
    for i, (sku, cat, q, price) in enumerate(specs):
        qd, pd = Decimal(q), Decimal(price)
        out.append(LineIn(i + 1, sku, sku, cat, qd, pd, (qd * pd).quantize(Decimal("0.01"))))
    return tuple(out)


def receipt(
    *specs: tuple[str, str, str, str],
    store: str = "msk-01",
    channel: str = "pos",
    member: uuid.UUID | None = None,
) -> ReceiptContext:
    return ReceiptContext(
        store=store,
        partner=None,
        channel=channel,
        occurred_at=NOW,
        timezone="Europe/Moscow",
        lines=lines(*(specs or (MILK, COFFEE))),
        member=MemberContext(id=member) if member else None,
    )


MakePool = Callable[..., CouponPool]


@pytest.fixture
def make_pool(program: Database) -> MakePool:
    """``make_pool(reward={...}, **fields)`` → a pool (committed), with no codes."""

    def make(**fields: Any) -> CouponPool:
        body = {"name": "Test pool", "reward": {"kind": "percent", "value": "10"}, **fields}
        with program.session() as s:
            pool = pools.create_pool(s, PoolIn.model_validate(body), "test")
            s.commit()
            return pool

    return make


AddCode = Callable[..., str]


@pytest.fixture
def add_code(program: Database) -> AddCode:
    """``add_code(pool, "CODE", member=None)`` → the code, imported into the pool."""

    def add(pool: CouponPool, code: str | None = None, member: uuid.UUID | None = None) -> str:
        with program.session() as s:
            if code is None and member is not None:
                code = issue.issue_personal(s, pool.id, [member], "test")[0]["code"]
            elif code is None:
                issue.generate_now(s, pool.id, 1, "test")
                code = s.execute(
                    select(Coupon.code)
                    .where(Coupon.pool_id == pool.id)
                    .order_by(Coupon.id.desc())
                    .limit(1)
                ).scalar_one()
            else:
                body = ImportIn(codes=[code], member_ids=[member] if member else None)
                issue.import_codes(s, pool.id, body, "test")
            s.commit()
        return code

    return add


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
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Set ``KOPILKA_*`` variables for one test."""

    def put(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        reset_settings_cache()

    yield put
    monkeypatch.undo()
    reset_settings_cache()
