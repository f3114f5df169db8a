"""RawSelect runs a Core SELECT on psycopg's RawCursor with the same values SQLAlchemy
would give: binds and results through the types' processors, literals kept."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import ARRAY, String, any_, bindparam, select

from kopilka.core.batch import RawSelect
from kopilka.core.db import Database
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Account
from kopilka.members.models import Member
from tests.conftest import apply_demo_program


@pytest.mark.postgres_only
def test_the_same_rows_as_sqlalchemy(
    db: Database, client: TestClient, admin: dict[str, str]
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("RawSelect is PostgreSQL's")
    apply_demo_program(db)
    # given a member with two wallets, one with a fractional balance
    m = client.post("/api/v1/members", json={"phone": "+79165551234"}, headers=admin).json()
    member_id = uuid.UUID(m["id"])
    with db.session() as s:
        ledger.lock_wallets(s, [(member_id, "STICKER")])
        ledger.credit(
            s,
            key="raw-select",
            kind="adjust",
            member_id=member_id,
            currency="BONUS",
            amount=D("12.34"),
            actor="test",
            never_expires=True,
            pending_days=0,
        )
        s.commit()
    statement = (
        select(
            Member.id,
            Member.tags,
            Member.created_at,
            Account.currency,
            Account.balance.label("balance"),
        )
        .join(Account, Account.member_id == Member.id)
        .where(
            Member.id == bindparam("m"),
            Account.kind == "member",  # a literal the statement holds
            Account.currency == any_(bindparam("codes", type_=ARRAY(String))),
        )
        .order_by(Account.currency)
    )
    params = {"m": member_id, "codes": ["BONUS", "STICKER", "NONE"]}
    # when it runs both ways
    with db.session() as s:
        expected = [tuple(r) for r in s.execute(statement, params).all()]
        rows = RawSelect(statement, s.get_bind().dialect).all(s, params)
    # then the rows are equal, typed alike, and named
    assert [tuple(r) for r in rows] == expected
    assert [r.balance for r in rows] == [D("12.34"), D("0")]
    assert isinstance(rows[0].created_at, dt.datetime) and rows[0].created_at.tzinfo is not None
    assert rows[0]._mapping["currency"] == "BONUS"
    assert rows[0].tags is None  # a JSON null, as SQLAlchemy reads it
