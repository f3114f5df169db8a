"""A programme with stickers: one per full 300 ₽ paid (after discounts), two more per
juice of the sponsor, a season ending on 31 March 2027; a towel for 1 ₽ and 30 stickers
at the till (5 in stock), a free coffee coupon for 10 (3 in stock)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.ledger import service as ledger
from kopilka.program import service as program_service
from tests.conftest import Clock

STICKER_PROGRAM = """
name: Sticker programme
base_currency: RUB
timezone: Europe/Moscow
currencies:
  - {code: BONUS, name: Бонусы, precision: 2, value: "1.00", redeem_max_share: "0.5"}
  - {code: STICKER, name: Наклейки, precision: 0, value: "0", redeem_max_share: "0",
     expires_on: "2027-03-31"}
stores:
  - {code: msk-01, name: "Тверская, 12"}
clock: {max_replay_days: 3650}
rules:
  - name: Sale
    when: {lines: {skus: [SALE]}}
    discount: {percent: "10"}
  - name: Stickers
    earn: {currency: STICKER, amount: "1", every: "300"}
  - name: Sponsor juice
    when: {lines: {skus: [JUICE]}}
    earn: {currency: STICKER, amount: "2", per: unit}
rewards:
  - code: towel-1r
    name: {ru: "Полотенце за 1 ₽", en: "Towel for 1 RUB"}
    cost: {currency: STICKER, amount: "30"}
    gives: {sku: TOWEL-01, price: "1.00"}
    stock: %(towels)s
    available: {from: "2026-11-01", to: "2027-04-15"}
  - code: coffee
    name: {ru: "Кофе в подарок", en: "A free coffee"}
    cost: {currency: STICKER, amount: "10"}
    gives: {coupon_pool: FREE-COFFEE}
    stock: 3
"""

# an hour before the pinned clock (2026-12-05 12:00 UTC), in Moscow
AT = "2026-12-05T14:00:00+03:00"


def apply(db: Database, towels: int = 5) -> None:
    with db.session() as session:
        spec = program_service.parse_program(STICKER_PROGRAM % {"towels": towels})
        program_service.apply_program(session, spec, actor="test")
        session.commit()
    program_service.invalidate_cache()


@pytest.fixture
def stickers(db: Database, clock: Clock) -> Clock:
    apply(db)
    return clock


Enrol = Callable[..., dict[str, Any]]


def seed(db: Database, member_id: str, amount: str, currency: str = "STICKER") -> None:
    with db.session() as s:
        ledger.credit(
            s,
            key=f"seed-{member_id}-{currency}-{amount}",
            kind="adjust",
            member_id=uuid.UUID(member_id),
            currency=currency,
            amount=Decimal(amount),
            actor="test",
            available_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        s.commit()


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], db: Database, stickers: Clock) -> Enrol:
    """A member holding ``stickers`` STICKER, available now."""
    n = iter(range(10_000))

    def make(stickers: str = "0") -> dict[str, Any]:
        r = client.post("/api/v1/members", json={"phone": f"+7916444{next(n):04d}"}, headers=admin)
        assert r.status_code == 201, r.text
        m: dict[str, Any] = r.json()
        if Decimal(stickers) > 0:
            seed(db, m["id"], stickers)
        return m

    return make


def receipt(external_id: str, card: str, *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": AT,
        "member": {"card": card},
        "lines": list(lines),
    }
    body.update(extra)
    return body


def line(sku: str, price: str, qty: str = "1", **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "quantity": qty, "unit_price": price, **extra}


TOWEL = line("TOWEL-01", "499.00", reward="towel-1r")


def stickers_of(client: TestClient, h: dict[str, str], member_id: str) -> str:
    r = client.get(f"/api/v1/members/{member_id}/balances", headers=h)
    return next(str(b["available"]) for b in r.json()["balances"] if b["currency"] == "STICKER")


def stock_left(client: TestClient, h: dict[str, str], code: str) -> int | None:
    r = client.get("/api/v1/rewards", headers=h)
    assert r.status_code == 200, r.text
    left: int | None = next(i["stock_left"] for i in r.json()["items"] if i["code"] == code)
    return left
