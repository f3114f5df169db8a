"""Webhook delivery against a real local HTTP receiver."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database, make_engine, now
from kopilka.events import service as events
from kopilka.events.models import OutboxEvent
from kopilka.webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from kopilka.webhooks.service import Policy
from kopilka.webhooks.signing import verify_signature
from kopilka.worker.loop import Worker
from tests.conftest import KeyFactory
from tests.purchases.conftest import receipt
from tests.receiver import SECRET, Clock, Receiver, ReceiverServer, drain, subscribe


def _emit_many(db: Database, members: list[uuid.UUID], per_member: int) -> list[uuid.UUID]:
    """``per_member`` events for each member, interleaved; their ids in emission order."""
    ids = []
    with db.session() as s:
        for n in range(per_member):
            for m in members:
                ids.append(events.emit(s, "member.updated", {"n": n}, member_id=m))
        s.commit()
    return ids


@pytest.mark.usefixtures("program")
def test_purchase_events_arrive_signed_once(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given an endpoint for every event
    admin, till = auth("admin"), auth("cashier")
    subscribe(client, admin, receiver.url)
    # when a member enrols and buys, and the worker runs
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    client.post("/api/v1/purchases", json=receipt("W-1", m["card_number"]), headers=till)
    assert drain(db) == 3
    # then the receiver has the three events, in order, each signed with the secret
    got = receiver.events()
    assert [e["type"] for e in got] == ["member.created", "purchase.confirmed", "points.earned"]
    assert receiver.all_signed()
    for hit in receiver.accepted():
        assert hit.headers["content-type"] == "application/json"
        assert hit.headers["kopilka-event-id"] == hit.event()["id"]
        assert hit.headers["kopilka-event-type"] == hit.event()["type"]
        assert not verify_signature("wrong-secret-000000", hit.headers["kopilka-signature"], b"")
        assert not verify_signature(
            "wrong-secret-000000", hit.headers["kopilka-signature"], hit.body
        )
    assert set(got[0]) == {"id", "type", "version", "created_at", "data"}
    assert got[0]["data"]["member_id"] == m["id"]
    assert got[1]["version"] == 1
    assert got[1]["data"]["total_due"] == "629.80"
    assert got[2]["data"]["amount"] == "31.49"
    # and nothing is sent twice
    assert drain(db) == 0
    assert len(receiver.hits) == 3


@pytest.mark.usefixtures("program")
def test_only_subscribed_types_and_nothing_for_rollbacks(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given an endpoint for purchase.confirmed only
    admin = auth("admin")
    subscribe(client, admin, receiver.url, ["purchase.confirmed"])
    # when a member enrols (not subscribed), a purchase fails, and an emitting
    # transaction is rolled back
    client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
    r = client.post(
        "/api/v1/purchases", json={**receipt("X", None), "store": "nope"}, headers=admin
    )
    assert r.status_code == 422
    with db.session() as s:
        events.emit(s, "purchase.confirmed", {"n": "rolled back"})
        s.rollback()
    # then nothing is delivered, and the outbox holds only the enrolment
    assert drain(db) == 0
    with db.session() as s:
        assert s.scalars(select(OutboxEvent.type)).all() == ["member.created"]
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


@pytest.mark.usefixtures("program")
def test_retries_follow_the_backoff_schedule_then_dead(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given a failing receiver, an injected clock and a seeded jitter
    admin = auth("admin")
    hook = subscribe(client, admin, receiver.url)
    receiver.status = 500
    client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
    clock = Clock(now() + dt.timedelta(seconds=1))
    policy = Policy(max_attempts=4, base_seconds=10, rng=random.Random(7))
    expected_rng = random.Random(7)
    waits = [10 * 2**n * (0.8 + 0.4 * expected_rng.random()) for n in range(3)]
    start = clock.t
    # when the worker runs at each moment a retry falls due, and just before it
    attempts_at = [start]
    assert drain(db, clock=clock, policy=policy) == 1
    for wait in waits:
        clock.advance(wait - 0.01)
        assert drain(db, clock=clock, policy=policy) == 0  # not yet
        clock.t = attempts_at[-1] + dt.timedelta(seconds=wait)
        attempts_at.append(clock.t)
        assert drain(db, clock=clock, policy=policy) == 1
    # then the attempts are at exactly those moments, and the delivery is dead
    with db.session() as s:
        d = s.scalars(select(Delivery)).one()
        log = s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.number)).all()
        endpoint = s.get(WebhookEndpoint, uuid.UUID(hook))
        assert endpoint is not None
        assert (d.status, d.attempts, d.last_status_code) == ("dead", 4, 500)
        assert endpoint.consecutive_failures == 4
    assert [a.attempted_at for a in log] == attempts_at
    assert [a.number for a in log] == [1, 2, 3, 4]
    assert {(a.outcome, a.status_code, a.error) for a in log} == {("http_error", 500, "HTTP 500")}
    assert len(receiver.hits) == 4 and receiver.all_signed()
    clock.advance(10**6)
    assert drain(db, clock=clock, policy=policy) == 0  # dead is not retried


@pytest.mark.usefixtures("program")
def test_receiver_down_then_back_gets_everything_in_order_per_member(
    client: TestClient, auth: KeyFactory, db: Database, receiver_server: ReceiverServer
) -> None:
    receiver = receiver_server.receiver
    assert receiver is not None
    # given an endpoint whose receiver is down (port closed)
    admin = auth("admin")
    subscribe(client, admin, receiver.url)
    receiver_server.stop()
    members = [uuid.uuid4() for _ in range(5)]
    ids = _emit_many(db, members, per_member=6)
    clock = Clock(now() + dt.timedelta(seconds=1))
    policy = Policy(base_seconds=1, rng=random.Random(1))
    # when the worker tries while it is down: only each member's first event is tried
    assert drain(db, clock=clock, policy=policy) == 5
    with db.session() as s:
        outcomes = s.scalars(select(DeliveryAttempt.outcome)).all()
    assert outcomes == ["network_error"] * 5
    # and the receiver comes back; the worker carries on as retries fall due
    receiver_server.start()
    for _ in range(20):
        clock.advance(30)
        drain(db, clock=clock, policy=policy, concurrency=4)
    # then everything arrived once, and each member's events in the order written
    got = receiver.events()
    assert sorted(e["id"] for e in got) == sorted(str(i) for i in ids)
    member_of = {str(i): members[k % len(members)] for k, i in enumerate(ids)}
    for m in members:
        assert [e["data"]["n"] for e in got if member_of[e["id"]] == m] == list(range(6))


@pytest.mark.usefixtures("program")
def test_concurrent_sending_keeps_each_members_order(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given a slowish receiver and 3 members with 10 events each
    admin = auth("admin")
    subscribe(client, admin, receiver.url)
    receiver.delay = 0.01
    members = [uuid.uuid4() for _ in range(3)]
    _emit_many(db, members, per_member=10)
    # when one worker sends 8 at a time
    assert drain(db, concurrency=8, batch=50) == 30
    # then each member's events arrived in order
    got = receiver.events()
    by_member: dict[str, list[int]] = {}
    with db.session() as s:
        member_of = {
            str(i): str(m) for i, m in s.execute(select(Delivery.event_id, Delivery.member_id))
        }
    for e in got:
        by_member.setdefault(member_of[e["id"]], []).append(e["data"]["n"])
    assert by_member == {str(m): list(range(10)) for m in members}


@pytest.mark.usefixtures("program")
def test_slow_receiver_times_out_and_redirects_are_not_followed(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    admin = auth("admin")
    subscribe(client, admin, receiver.url)
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1}, member_id=uuid.uuid4())
        events.emit(s, "member.updated", {"n": 2}, member_id=uuid.uuid4())
        s.commit()
    # when the receiver does not answer before the timeout (it holds both requests until
    # the worker is done: a receiver merely slower than the timeout could still answer first
    # when the worker's thread is kept waiting on a busy machine)
    receiver.hold = threading.Event()
    try:
        assert drain(db, policy=Policy(timeout_seconds=0.2)) == 2
    finally:
        receiver.hold.set()
    # and later with a redirect
    receiver.hold = None
    receiver.status = 302
    with db.session() as s:
        s.execute(Delivery.__table__.update().values(next_attempt_at=now()))
        s.commit()
    assert drain(db) == 2
    with db.session() as s:
        log = s.execute(
            select(DeliveryAttempt.number, DeliveryAttempt.outcome, DeliveryAttempt.status_code)
        ).all()
        assert sorted(log) == [
            (1, "timeout", None),
            (1, "timeout", None),
            (2, "http_error", 302),
            (2, "http_error", 302),
        ]
        assert {d.status for d in s.scalars(select(Delivery))} == {"pending"}
    # the redirect target was never asked
    assert [h.path for h in receiver.hits] == ["/hook"] * 4


@pytest.mark.usefixtures("program")
def test_endpoint_disabled_after_a_run_of_failures_with_a_notice(
    client: TestClient, auth: KeyFactory, db: Database, receiver_server: ReceiverServer
) -> None:
    failing = receiver_server.receiver
    assert failing is not None
    failing.status = 500
    # given a failing endpoint, and another that listens for webhook.disabled
    admin = auth("admin")
    hook = subscribe(client, admin, failing.url, ["member.updated"])
    watcher = ReceiverServer()
    try:
        assert watcher.receiver is not None
        subscribe(client, admin, watcher.receiver.url, ["webhook.disabled"])
        # when three deliveries in a row fail and the limit is three
        with db.session() as s:
            for n in range(4):
                events.emit(s, "member.updated", {"n": n}, member_id=uuid.uuid4())
            s.commit()
        policy = Policy(disable_after_failures=3)
        drain(db, policy=policy, batch=3)
        # then the endpoint is off, its pending deliveries wait, and the watcher heard
        r = client.get(f"/api/v1/webhooks/{hook}", headers=admin).json()
        assert r["active"] is False
        assert r["disabled_reason"] == "disabled after 3 failed deliveries in a row"
        assert [e["type"] for e in watcher.receiver.events()] == ["webhook.disabled"]
        assert watcher.receiver.events()[0]["data"] == {
            "endpoint_id": hook,
            "url": failing.url,
            "consecutive_failures": 3,
        }
        assert len(failing.hits) == 3
        with db.session() as s:
            s.execute(Delivery.__table__.update().values(next_attempt_at=now()))
            s.commit()
        assert drain(db, policy=policy) == 0
        # when an operator turns it back on, and the receiver is fixed
        failing.status = 200
        r = client.patch(f"/api/v1/webhooks/{hook}", json={"active": True}, headers=admin)
        assert r.json()["active"] is True and r.json()["consecutive_failures"] == 0
        with db.session() as s:
            s.execute(Delivery.__table__.update().values(next_attempt_at=now()))
            s.commit()
        # then the four member.updated events arrive
        drain(db, policy=policy)
        assert sorted(e["data"]["n"] for e in failing.events()) == [0, 1, 2, 3]
    finally:
        watcher.stop()


@pytest.mark.usefixtures("program")
def test_two_workers_share_a_backlog_without_double_delivery(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given a backlog of 300 events of distinct members
    admin = auth("admin")
    subscribe(client, admin, receiver.url)
    with db.session() as s:
        for i in range(300):
            events.emit(s, "member.updated", {"n": i}, member_id=uuid.uuid4())
        s.commit()
    counts: list[int] = []
    url = db.engine.url.render_as_string(hide_password=False)

    def work() -> None:
        own = Database(make_engine(url=url))  # its own connections
        try:
            w = Worker(own, batch=10, jobs=False, concurrency=2)
            total = 0
            while (n := w.run(once=True)) > 0:
                total += n
            counts.append(total)
        finally:
            own.dispose()

    # when two workers drain it at once
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then every event arrived exactly once
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert sum(counts) == 300
    if db.dialect == "postgresql":  # SKIP LOCKED: both took a share
        assert all(c > 0 for c in counts), counts
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryAttempt)) == 300


def test_a_secret_rotated_signs_from_the_next_delivery(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    admin = auth("admin")
    hook = subscribe(client, admin, receiver.url)
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1})
        s.commit()
    drain(db)
    new = "whsec-rotated-0123456789"
    client.patch(f"/api/v1/webhooks/{hook}", json={"secret": new}, headers=admin)
    receiver.secret = new
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 2})
        s.commit()
    drain(db)
    assert [h.signature_ok for h in receiver.hits] == [True, True]
    assert verify_signature(
        new, receiver.hits[1].headers["kopilka-signature"], receiver.hits[1].body
    )
    assert not verify_signature(
        SECRET, receiver.hits[1].headers["kopilka-signature"], receiver.hits[1].body
    )
