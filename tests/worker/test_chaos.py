"""Worker processes killed with SIGKILL at random moments during a burst of purchases lose
nothing, send nothing for rolled-back changes, and keep each member's order."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.events import service as events
from kopilka.events.models import OutboxEvent
from kopilka.webhooks.models import Delivery
from tests.conftest import KeyFactory
from tests.purchases.conftest import receipt
from tests.receiver import Receiver, subscribe
from tests.worker.process import start_worker

MEMBERS = 50
PURCHASES = 1000


@pytest.mark.slow  # about 40 s
@pytest.mark.usefixtures("program")
def test_sigkill_during_a_burst_of_purchases_loses_nothing(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    rng = random.Random(20261123)
    admin, till = auth("admin"), auth("cashier")
    subscribe(client, admin, receiver.url)
    cards = [
        client.post("/api/v1/members", json={"phone": f"+7916100{i:04d}"}, headers=admin).json()[
            "card_number"
        ]
        for i in range(MEMBERS)
    ]
    rolled_back: list[uuid.UUID] = []
    failures: list[str] = []

    def burst() -> None:
        """1,000 receipts through the API; now and then a change that is rolled back."""
        for i in range(PURCHASES):
            r = client.post(
                "/api/v1/purchases", json=receipt(f"C-{i}", cards[i % MEMBERS]), headers=till
            )
            if r.status_code != 201:
                failures.append(r.text)
            if i % 20 == 0:  # an emitting transaction that does not commit
                with db.session() as s:
                    rolled_back.append(
                        events.emit(s, "purchase.confirmed", {"n": i}, member_id=uuid.uuid4())
                    )
                    s.rollback()
            if i % 25 == 0:  # a receipt refused by the API (its transaction rolled back)
                bad = {**receipt(f"X-{i}", cards[0]), "store": "nope"}
                assert client.post("/api/v1/purchases", json=bad, headers=till).status_code == 422

    producer = threading.Thread(target=burst)
    started = time.monotonic()
    producer.start()
    # while the burst goes on, worker processes are killed at random moments
    kills = 0
    receiver.delay = 0.002
    # (at least three, even when the burst ends before a slow machine has started three workers)
    while producer.is_alive() or kills < 3:
        w = start_worker(db, "--batch", "20", lease_seconds=2)
        seen = len(receiver.hits)  # killed once it is sending, at a random moment
        deadline = time.monotonic() + 10
        while len(receiver.hits) == seen and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.5))
        os.kill(w.pid, signal.SIGKILL)
        w.wait()
        kills += 1
    producer.join()
    burst_seconds = time.monotonic() - started
    assert failures == []
    # and a last worker runs until everything is delivered, then stops on SIGTERM
    w = start_worker(db, lease_seconds=2)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.session() as s:
                left = s.execute(select(Delivery.id).where(Delivery.status != "delivered")).first()
            if left is None:
                break
            time.sleep(0.25)
    finally:
        w.send_signal(signal.SIGTERM)
        assert w.wait(timeout=30) == 0
    # then the receiver's deduplicated set is exactly the committed events
    with db.session() as s:
        committed = s.execute(
            select(OutboxEvent.id, OutboxEvent.member_id).order_by(OutboxEvent.created_at)
        ).all()
    assert len(committed) == MEMBERS + 2 * PURCHASES  # enrolments; receipts and points
    got = receiver.events()
    assert receiver.event_ids() == {str(i) for i, _ in committed}
    assert not receiver.event_ids() & {str(i) for i in rolled_back}
    assert receiver.all_signed()
    # and each member's events first arrived in the order they were written
    first_seen: dict[str, int] = {}
    for n, e in enumerate(got):
        first_seen.setdefault(e["id"], n)
    by_member: dict[uuid.UUID | None, list[int]] = {}
    for event_id, member_id in committed:
        by_member.setdefault(member_id, []).append(first_seen[str(event_id)])
    assert all(seq == sorted(seq) for seq in by_member.values())
    duplicates = sum(c - 1 for c in Counter(e["id"] for e in got).values())
    print(
        f"\nchaos: {kills} workers killed during a {burst_seconds:.1f} s burst; "
        f"{len(committed)} events, {duplicates} delivered more than once"
    )
