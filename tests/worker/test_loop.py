"""The worker loop: graceful stop, the in-process worker of ``kopilka serve``, metrics."""

from __future__ import annotations

import json
import os
import select as io_select
import signal
import subprocess
import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.config import get_settings
from kopilka.core.db import Database
from kopilka.events import service as events
from kopilka.main import create_app
from kopilka.webhooks.models import Delivery
from kopilka.webhooks.service import Policy
from tests.conftest import KeyFactory
from tests.receiver import Receiver, drain, subscribe
from tests.worker.process import start_worker


def _wait(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def _wait_for_log(w: subprocess.Popen[bytes], event: str, seconds: float) -> bool:
    """Read the worker's JSON log lines until one is ``event`` (or time runs out). Reads the
    pipe itself: a buffered ``readline`` could keep the line in its buffer, unseen."""
    assert w.stderr is not None
    fd = w.stderr.fileno()
    pending = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = io_select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            try:
                if json.loads(line).get("event") == event:
                    return True
            except ValueError:  # not a log line (a warning printed by a library)
                continue
    return False


@pytest.mark.usefixtures("program")
def test_sigterm_stops_after_the_deliveries_in_flight_and_hands_back_the_rest(
    client: TestClient, auth: KeyFactory, db: Database, receiver: Receiver
) -> None:
    # given 40 events and a receiver that holds every request until told to answer
    # (regression, issue 19: this compared wall-clock time with a bound of 2.5 s and failed
    # at 2.63 s on a busy machine; which deliveries were in flight is now known exactly)
    subscribe(client, auth("admin"), receiver.url)
    with db.session() as s:
        for n in range(40):
            events.emit(s, "member.updated", {"n": n}, member_id=uuid.uuid4())
        s.commit()
    receiver.hold = threading.Event()
    # when a worker (batches of 20, 2 at a time) has 2 deliveries in flight
    # (its delivery timeout far above the test's waits: on a starved machine a 10 s timeout
    # freed a slot before the signal came, and a third delivery went out; issue 19's CI)
    w = start_worker(
        db,
        "--batch",
        "20",
        "--concurrency",
        "2",
        lease_seconds=600,
        log_level="INFO",
        timeout_seconds=240,
    )
    try:
        if not _wait(lambda: len(receiver.hits) == 2, 60):
            pytest.fail(f"the worker sent nothing: {w.stderr.read() if w.stderr else ''}")
        # and gets SIGTERM, and only then do the receiver's answers come (well within the
        # worker's delivery timeout: the log line is read a moment after the signal)
        w.send_signal(signal.SIGTERM)
        assert _wait_for_log(w, "worker stopping", 60)
        receiver.hold.set()
        # then it exits cleanly, without waiting for its 600 s lease to run out
        assert w.wait(timeout=60) == 0, w.stderr.read() if w.stderr else ""
    finally:
        receiver.hold.set()
        if w.poll() is None:
            w.kill()
            w.wait()
    # having sent the 2 in flight and nothing of the rest of its batch of 20
    assert len(receiver.hits) == 2
    with db.session() as s:
        rows = s.execute(select(Delivery.status, Delivery.leased_until)).all()
    # every delivery it sent is recorded; the rest are free for others at once
    assert sorted(st for st, _ in rows) == ["delivered"] * 2 + ["pending"] * 38
    assert all(lease is None for _, lease in rows)
    # and another worker sends the rest at once
    receiver.hold = None
    assert drain(db) == 38
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == 40 == len(set(ids))  # nothing twice


@pytest.mark.usefixtures("program")
def test_serve_runs_a_worker_in_process_when_told(
    auth: KeyFactory, db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "embedded_worker", True)
    admin = auth("admin")
    with TestClient(create_app()) as c:
        subscribe(c, admin, receiver.url)
        # when a member enrols through the API of an app with the embedded worker
        r = c.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
        assert r.status_code == 201
        # then the event arrives with no other process running
        assert _wait(lambda: len(receiver.events()) == 1, 15)
        assert receiver.events()[0]["type"] == "member.created"
    # and the thread is gone when the app stops
    assert not [t for t in threading.enumerate() if t.name == "kopilka-worker"]


def test_the_embedded_worker_is_off_unless_asked_on_postgresql(
    monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    from kopilka.worker.loop import embedded_enabled

    monkeypatch.setattr(get_settings(), "embedded_worker", None)
    assert embedded_enabled() is (db.dialect == "sqlite")
    monkeypatch.setattr(get_settings(), "embedded_worker", False)
    assert embedded_enabled() is False


@pytest.mark.usefixtures("program")
def test_metrics_show_the_outbox_deliveries_and_jobs(
    client: TestClient,
    auth: KeyFactory,
    db: Database,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given one delivered event and one failing
    admin = auth("admin")
    subscribe(client, admin, receiver.url)
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 1}, member_id=uuid.uuid4())
        s.commit()
    drain(db)
    receiver.status = 500
    with db.session() as s:
        events.emit(s, "member.updated", {"n": 2}, member_id=uuid.uuid4())
        s.commit()
    drain(db, policy=Policy())
    from kopilka.core.jobs import load_jobs, run_due_jobs

    load_jobs()
    with db.session() as s:
        run_due_jobs(s, "w", only={"purchases.release_holds"})
    # then /metrics says so
    text = client.get("/metrics").text
    lines = set(text.splitlines())
    assert 'kopilka_webhook_deliveries{status="pending"} 1.0' in lines
    assert 'kopilka_webhook_deliveries{status="delivered"} 1.0' in lines
    assert 'kopilka_webhook_attempts_total{outcome="success"} 1.0' in lines
    assert 'kopilka_webhook_attempts_total{outcome="http_error"} 1.0' in lines
    assert "kopilka_outbox_events_total 2.0" in lines
    assert "kopilka_outbox_pending 1.0" in lines
    assert 'kopilka_webhook_endpoints{state="active"} 1.0' in lines
    assert 'kopilka_job_runs_total{job="purchases.release_holds"} 1.0' in lines
    assert 'kopilka_job_last_run_failed{job="purchases.release_holds"} 0.0' in lines
    lag = next(ln for ln in lines if ln.startswith("kopilka_outbox_lag_seconds "))
    assert 0 <= float(lag.split()[1]) < 60
    # and a token, when set, is required
    monkeypatch.setattr(get_settings(), "metrics_token", "t0ken")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer t0ken"}).status_code == 200
