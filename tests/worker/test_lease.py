"""A worker's lease on its batch outlives a slow batch, and a delivery whose lease the worker
lost is not sent: no duplicate deliveries without a crash."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from kopilka.core.db import Database, make_engine
from kopilka.events import service as events
from kopilka.webhooks import service as webhooks
from kopilka.webhooks.models import Delivery, DeliveryAttempt
from kopilka.webhooks.service import Policy
from kopilka.worker.loop import BatchLease, Worker
from tests.conftest import KeyFactory
from tests.receiver import Clock, Receiver, subscribe

pytestmark = pytest.mark.usefixtures("program")


def _backlog(db: Database, n: int) -> set[str]:
    """``n`` events of distinct members; their ids."""
    with db.session() as s:
        ids = {
            str(events.emit(s, "member.updated", {"n": i}, member_id=uuid.uuid4()))
            for i in range(n)
        }
        s.commit()
    return ids


def _status(db: Database) -> Counter[str]:
    with db.session() as s:
        return Counter(s.scalars(select(Delivery.status)))


def test_two_workers_and_a_slow_receiver_deliver_each_event_once(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given 30 events and a receiver that takes 0.5 s per request
    subscribe(client, auth("admin"), receiver.url)
    expected = _backlog(db, 30)
    receiver.delay = 0.5
    # and two workers, each on its own engine, with a 4 s lease and a 10 s timeout: a batch
    # of 20 sent 2 at a time takes 5 s, longer than the lease it was claimed with. The
    # timeout only has to be far above 0.5 s: at 1 s (and 2 s is no sure thing on a busy
    # machine) a request timed out, was sent again, and the receiver saw it twice, which is
    # at-least-once, not a lease lost. It does not shorten the lease's renewals (those
    # start with half the lease left, 2 s, whatever the timeout).
    url = db.engine.url.render_as_string(hide_password=False)
    workers: list[Worker] = []
    errors: list[BaseException] = []

    def work() -> None:
        own = Database(make_engine(url=url))
        try:
            w = Worker(
                own,
                batch=20,
                concurrency=2,
                poll_seconds=0.05,
                jobs=False,
                lease_seconds=4,
                policy=Policy(timeout_seconds=10.0),
            )
            workers.append(w)
            w.run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    # when they run until every delivery is recorded, and a lease more
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _status(db)["delivered"] < 30:
        time.sleep(0.1)
    time.sleep(4.5)
    for w in workers:
        w.stop()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    # then every event reached the receiver exactly once (counted by event id)
    arrived = Counter(h.event()["id"] for h in receiver.hits)
    assert set(arrived) == expected
    assert [i for i, n in arrived.items() if n != 1] == []
    # and each delivery is delivered after one attempt
    assert _status(db) == Counter({"delivered": 30})
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryAttempt)) == 30
        assert s.scalars(select(Delivery.leased_until).distinct()).all() == [None]


def test_a_delivery_whose_lease_was_taken_is_not_sent(
    client: TestClient,
    auth: KeyFactory,
    db: Database,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given three pending deliveries and a worker with a 60 s lease
    subscribe(client, auth("admin"), receiver.url)
    _backlog(db, 3)
    clock = Clock()
    w = Worker(db, jobs=False, concurrency=1, clock=clock, lease_seconds=60)
    stolen: list[uuid.UUID] = []
    other_lease = clock() + dt.timedelta(seconds=300)
    claim = webhooks.claim

    def claim_then_stall(*args: Any, **kwargs: Any) -> list[webhooks.Claimed]:
        claimed = claim(*args, **kwargs)
        # the worker stalls for 50 s after its claim; meanwhile another worker took one
        with db.session() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == claimed[1].delivery_id)
                .values(leased_until=other_lease)
            )
            s.commit()
        stolen.append(claimed[1].delivery_id)
        clock.advance(50)
        return claimed

    # when it sends its batch
    monkeypatch.setattr(webhooks, "claim", claim_then_stall)
    assert w.run(once=True) == 2
    # then it sent and recorded only the two it still held
    sent = sorted(h.headers["kopilka-delivery"] for h in receiver.hits)
    with db.session() as s:
        rows = {d.id: d for d in s.scalars(select(Delivery))}
        attempts = sorted(str(i) for i in s.scalars(select(DeliveryAttempt.delivery_id)))
    assert sent == attempts == sorted(str(i) for i in rows if i != stolen[0])
    # and the stolen one is left to the worker that holds it: pending, its lease untouched
    assert (rows[stolen[0]].status, rows[stolen[0]].leased_until) == ("pending", other_lease)
    assert sorted(d.status for d in rows.values()) == ["delivered", "delivered", "pending"]


def test_the_lease_is_renewed_only_when_little_of_it_is_left(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given a batch of two claimed with a 60 s lease (10 s timeout)
    subscribe(client, auth("admin"), "http://127.0.0.1:9/hook")
    _backlog(db, 2)
    clock = Clock()
    w = Worker(db, jobs=False, clock=clock, lease_seconds=60)
    with db.session() as s:
        claimed = webhooks.claim(s, 10, clock(), 60)
    first = claimed[0].leased_until
    lease = BatchLease(w, claimed)
    assert (lease.renew_below, lease.tick) == (20.0, 5.0)

    def leases() -> list[dt.datetime | None]:
        with db.session() as s:
            return list(s.scalars(select(Delivery.leased_until)))

    # when 39 s have passed, then a send keeps the lease as it is
    clock.advance(39)
    assert lease.take(claimed[0]) == claimed[0]
    assert leases() == [first, first]
    # when 41 s have passed, then the whole batch's lease is renewed for 60 s from now
    clock.advance(2)
    renewed = clock() + dt.timedelta(seconds=60)
    assert lease.take(claimed[1]) == replace(claimed[1], leased_until=renewed)
    assert leases() == [renewed, renewed]
    assert lease.lost == set()
