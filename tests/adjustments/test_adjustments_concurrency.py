"""Two approvers at once post an adjustment once: on real connections (PostgreSQL's row
locks; SQLite serialises its writers, where the same tests hold trivially)."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.adjustments import service as adjustments
from kopilka.adjustments.models import Adjustment
from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.events.models import OutboxEvent
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from tests.adjustments.conftest import new_member
from tests.conftest import KeyFactory

HUGE = {"currency": "BONUS", "amount": "50000", "reason": "a large goodwill credit"}


def _counts(db: Database) -> tuple[int, int, int]:
    """(adjust entries, ledger.adjust audit rows, ledger.adjust_approve audit rows)."""
    with db.session() as s:
        entries = s.scalar(select(func.count()).select_from(Entry).where(Entry.kind == "adjust"))
        rows = dict(
            s.execute(
                select(AuditEntry.action, func.count())
                .where(AuditEntry.action.in_(["ledger.adjust", "ledger.adjust_approve"]))
                .group_by(AuditEntry.action)
            ).all()
        )
    return int(entries or 0), rows.get("ledger.adjust", 0), rows.get("ledger.adjust_approve", 0)


def test_approvers_clicking_at_once_post_the_adjustment_once(
    ceiling: Database, client: TestClient, auth: KeyFactory
) -> None:
    # given a pending adjustment and eight managers other than its requester
    asker = auth("manager")
    m = new_member(client, asker)
    pending = client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=asker).json()
    approvers = [auth("manager") for _ in range(8)]
    barrier = threading.Barrier(len(approvers))
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def approve(h: dict[str, str]) -> None:
        barrier.wait()
        r = client.post(f"/api/v1/adjustments/{pending['id']}/approve", headers=h)
        with lock:
            answers.append((r.status_code, r.json()))

    # when they all approve it at the same moment
    threads = [threading.Thread(target=approve, args=(h,)) for h in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then every one of them is told it is approved, by the same one of them
    assert len(answers) == len(approvers)
    assert {status for status, _ in answers} == {200}
    bodies = {(b["status"], b["decided_by"], b["entry_id"]) for _, b in answers}
    assert len(bodies) == 1
    status, decided_by, entry_id = bodies.pop()
    assert status == "approved" and decided_by != pending["requested_by"] and entry_id
    # and the points moved once, audited once
    assert _counts(ceiling) == (1, 1, 1)
    r = client.get(f"/api/v1/members/{m}/balances", headers=asker)
    assert r.json()["balances"][0]["available"] == "50000.00"
    with ceiling.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_a_second_approval_waits_for_the_first_and_then_posts_nothing(
    ceiling: Database, client: TestClient, auth: KeyFactory
) -> None:
    # given a pending adjustment
    asker = auth("manager")
    m = uuid.UUID(new_member(client, asker))
    adj_id = uuid.UUID(
        client.post(f"/api/v1/members/{m}/adjustments", json=HUGE, headers=asker).json()["id"]
    )
    answer: dict[str, Any] = {}

    def second() -> None:
        with ceiling.session() as s:
            adj = adjustments.approve(s, adj_id, "user:second")
            s.commit()
            answer.update(status=adj.status, decided_by=adj.decided_by, entry_id=adj.entry_id)

    with ceiling.session() as first:
        # when one approver has approved it and not yet committed
        adjustments.approve(first, adj_id, "user:first")
        late = threading.Thread(target=second)
        late.start()
        # then a second approval on another connection waits for it (the row's lock)
        time.sleep(1.0)
        assert late.is_alive() and answer == {}
        first.commit()
    late.join(timeout=60)
    assert not late.is_alive()
    # and, once the first commits, finds it approved by the first, posting nothing
    assert (answer["status"], answer["decided_by"]) == ("approved", "user:first")
    assert _counts(ceiling) == (1, 1, 1)
    with ceiling.session() as s:
        row = s.get(Adjustment, adj_id)
        assert row is not None and row.entry_id == answer["entry_id"]
        balance = next(b for b in ledger.balances(s, m) if b.currency == "BONUS")
        assert balance.available == D("50000.00")


@pytest.mark.parametrize(("amount", "waits"), [("500", False), ("50000", True)])
def test_copies_of_one_request_sent_at_once_make_one_adjustment(
    ceiling: Database, client: TestClient, auth: KeyFactory, amount: str, waits: bool
) -> None:
    # given a member, and six copies of one console form (the same key) sent at once
    m = uuid.UUID(new_member(client, auth("manager")))
    copies = 6
    barrier = threading.Barrier(copies)
    outcomes: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        with ceiling.session() as s:
            if ceiling.dialect == "postgresql":
                s.connection()  # a connection each, before the start line
            barrier.wait()
            done = adjustments.request(
                s,
                member_id=m,
                currency="BONUS",
                amount=D(amount),
                reason="one form, clicked six times",
                actor="user:clicker",
                key="adjust:user:clicker:console:k1",
            )
            s.commit()
            with lock:
                outcomes.append(str((done.entry or done.adjustment).id))  # type: ignore[union-attr]

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then every copy is answered with the one adjustment (or entry) made, moved once,
    # announced and audited once
    assert len(outcomes) == copies and len(set(outcomes)) == 1
    with ceiling.session() as s:
        count = s.scalar(select(func.count()).select_from(Adjustment))
        events = s.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "points.adjusted")
        )
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("ledger.%"))
        ).all()
    entries, _, _ = _counts(ceiling)
    if waits:
        assert (count, entries, events, actions) == (1, 0, 0, ["ledger.adjust_request"])
    else:
        assert (count, entries, events, actions) == (0, 1, 1, ["ledger.adjust"])
