"""A receipt judges lots by the ledger's clock (``ledger.service.clock``), the clock tests
pin: regression for the confirmation that read the wall clock for its lots, so a lot still
open at the ledger's moment but expired by the wall clock's was skipped (the tests passed
or failed by the day they ran)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Lot
from kopilka.ledger.verify import verify
from tests.conftest import PINNED, Clock
from tests.purchases.conftest import Enrol, receipt


def test_a_lot_open_at_the_ledgers_moment_is_spent_first(
    client: TestClient, admin: dict[str, str], enrol: Enrol, program: Database, clock: Clock
) -> None:
    # given the ledger's clock at PINNED (2026-12-05 12:00 UTC, days before any run of this
    # test) and a member holding 30 BONUS that expire at midnight after it (open now by the
    # ledger, expired by the wall clock) and 50 that expire in June
    assert clock() == PINNED
    m = enrol()
    mid = uuid.UUID(m["id"])
    with program.session() as s:
        for key, amount, expires in [
            ("soon", "30", dt.datetime(2026, 12, 6, tzinfo=dt.UTC)),
            ("june", "50", dt.datetime(2027, 6, 1, tzinfo=dt.UTC)),
        ]:
            ledger.credit(
                s, key=key, kind="adjust", member_id=mid, currency="BONUS", amount=D(amount),
                actor="test", available_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                expires_at=expires,
            )  # fmt: skip
        s.commit()
    # when a till redeems 20 BONUS on a receipt of the pinned day
    body = receipt(
        "CLOCK-1",
        m["card_number"],
        occurred_at="2026-12-05T14:00:00+03:00",
        redeem={"currency": "BONUS", "amount": "20"},
    )
    r = client.post("/api/v1/purchases", json=body, headers=admin)
    assert r.status_code == 201, r.text
    # then the lot that expires first paid, and the June lot is whole
    with program.session() as s:
        left = dict(
            s.execute(
                select(Lot.expires_at, Lot.remaining).where(
                    Lot.expires_at.in_(
                        [
                            dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
                            dt.datetime(2027, 6, 1, tzinfo=dt.UTC),
                        ]
                    )
                )
            ).all()
        )
        assert left == {
            dt.datetime(2026, 12, 6, tzinfo=dt.UTC): D("10.0000"),
            dt.datetime(2027, 6, 1, tzinfo=dt.UTC): D("50.0000"),
        }
        assert verify(s, stop_at_first=False) == []
