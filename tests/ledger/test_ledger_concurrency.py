"""No double spend: many real connections redeem from one wallet at the same moment."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal as D

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database, make_engine
from kopilka.core.errors import Problem
from kopilka.ledger import service as ledger
from kopilka.ledger.verify import verify
from tests.ledger.conftest import MakeMember


def _race(
    db: Database, member: uuid.UUID, clients: int, amount: D, same_key: bool = False
) -> tuple[list[str], list[str]]:
    engine = make_engine(url=db.engine.url.render_as_string(hide_password=False))
    if db.dialect == "postgresql":
        engine.dispose()
        from sqlalchemy import create_engine

        engine = create_engine(db.engine.url, pool_size=clients + 5, max_overflow=0)
    dbx = Database(engine)
    barrier = threading.Barrier(clients)
    ok: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        with dbx.session() as s:
            if dbx.dialect == "postgresql":
                # a real connection each, opened before the start line (on SQLite opening
                # one begins the writer's transaction, so there the race starts at BEGIN)
                s.connection()
            barrier.wait()
            try:
                e = ledger.debit(
                    s,
                    key="same" if same_key else f"race-{i}",
                    kind="redeem",
                    member_id=member,
                    currency="BONUS",
                    amount=amount,
                    actor="t",
                )
                s.commit()
                with lock:
                    ok.append(str(e.id))
            except Problem as exc:
                s.rollback()
                with lock:
                    refused.append(exc.code)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung: deadlock?"
    engine.dispose()
    return ok, refused


def _fund(db: Database, member: uuid.UUID, amount: str) -> None:
    with db.session() as s:
        ledger.credit(
            s,
            key=f"fund-{member}",
            kind="earn",
            member_id=member,
            currency="BONUS",
            amount=D(amount),
            actor="t",
            pending_days=0,
        )
        s.commit()


def test_concurrent_redemptions_never_overspend(program: Database, make_member: MakeMember) -> None:
    # given a wallet holding 255.00 and many clients each redeeming 10.00 at once
    clients = 40 if program.dialect == "postgresql" else 8
    m = make_member()
    _fund(program, m, "255.00" if clients == 40 else "75.00")
    # when they race
    ok, refused = _race(program, m, clients, D("10.00"))
    # then exactly the affordable number succeed and the balance ends exact
    affordable = 25 if clients == 40 else 7
    assert len(ok) == affordable
    assert refused == ["insufficient_balance"] * (clients - affordable)
    with program.session() as s:
        b = next(x for x in ledger.balances(s, m) if x.currency == "BONUS")
        assert b.available == D("5.00")
        assert verify(s, stop_at_first=False) == []


@pytest.mark.postgres_only
def test_concurrent_retries_of_one_key_move_once(
    program: Database, make_member: MakeMember
) -> None:
    if program.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    m = make_member()
    _fund(program, m, "100.00")
    ok, refused = _race(program, m, 40, D("10.00"), same_key=True)
    assert len(set(ok)) == 1 and len(ok) == 40 and refused == []
    with program.session() as s:
        b = next(x for x in ledger.balances(s, m) if x.currency == "BONUS")
        assert b.available == D("90.00")


def test_opposite_transfers_do_not_deadlock(program: Database, make_member: MakeMember) -> None:
    a, b = make_member(), make_member()
    _fund(program, a, "500.00")
    _fund(program, b, "500.00")
    n = 20 if program.dialect == "postgresql" else 6
    dbx = Database(make_engine(url=program.engine.url.render_as_string(hide_password=False)))
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        src, dst = (a, b) if i % 2 else (b, a)
        try:
            with dbx.session() as s:
                if dbx.dialect == "postgresql":
                    s.connection()
                barrier.wait()
                ledger.transfer(
                    s,
                    key=f"x{i}",
                    from_member=src,
                    to_member=dst,
                    currency="BONUS",
                    amount=D("1.00"),
                    actor="t",
                )
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    dbx.dispose()
    assert errors == []
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


@pytest.mark.postgres_only
def test_concurrent_transfers_never_pass_the_daily_limit(
    program: Database, client: TestClient, admin: dict[str, str]
) -> None:
    if program.dialect != "postgresql":
        pytest.skip("PostgreSQL locking test")
    # given a member with 20,000 BONUS, a daily limit of 3,000 and 500 a transfer allowed
    ids = [
        client.post("/api/v1/members", json={"phone": p}, headers=admin).json()["id"]
        for p in ("+79160000001", "+79160000002")
    ]
    sender, recipient = uuid.UUID(ids[0]), uuid.UUID(ids[1])
    _fund(program, sender, "20000.00")
    clients = 20
    barrier = threading.Barrier(clients)
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        barrier.wait()
        r = client.post(
            f"/api/v1/members/{sender}/transfers",
            json={"to": {"id": str(recipient)}, "currency": "BONUS", "amount": "500"},
            headers={**admin, "Idempotency-Key": f"gift-{i}"},
        )
        with lock:
            answers.append((r.status_code, r.json().get("code")))

    # when 20 transfers of 500 are sent at the same moment
    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then exactly six pass; the others are refused by the daily limit
    assert sorted(answers, key=str) == [(201, None)] * 6 + [(422, "transfer_limit_exceeded")] * 14
    with program.session() as s:
        by_member = {b: ledger.balances(s, b)[0].available for b in (sender, recipient)}
        assert by_member == {sender: D("17000.00"), recipient: D("3000.00")}
        assert verify(s, stop_at_first=False) == []
