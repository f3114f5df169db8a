"""``kopilka worker``: delivers the outbox to webhooks and runs the scheduled jobs.

Each turn of the loop runs the jobs that are due (every few seconds), then claims a batch of
due deliveries, POSTs them concurrently (at most one per member and endpoint in a batch, so
order per member holds) and records the outcomes in one transaction; the batch's lease is
renewed while it is out (``BatchLease``), so a slow batch is never sent twice. SIGTERM (or
``stop()``) ends the loop after the current batch; deliveries of the batch not yet started
are handed back at once. ``kopilka serve`` on SQLite runs one in a thread (``lifespan``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import structlog

from kopilka.core.config import get_settings
from kopilka.core.db import Database, get_db, now
from kopilka.core.jobs import load_jobs, run_due_jobs
from kopilka.webhooks import service as webhooks

log = structlog.get_logger("kopilka.worker")

JOBS_CHECK_SECONDS = 5.0
ERROR_PAUSE_SECONDS = 5.0


class BatchLease:
    """The lease on one claimed batch, kept alive while the batch is sent and recorded.

    A batch can take longer than its lease (a slow receiver: 50 deliveries, 8 at a time,
    up to 10 s each), and a lease that ran out lets another worker claim and send the same
    deliveries again. So the lease is renewed — for every delivery of the batch still held,
    sent or not — whenever less than ``renew_below`` seconds of it are left: before each
    send, and every ``tick`` seconds while the batch is out. A delivery whose renewal finds
    it no longer ours is lost: it is not sent, recorded nor handed back."""

    def __init__(self, worker: Worker, claimed: list[webhooks.Claimed]) -> None:
        self.worker = worker
        self.ids = [c.delivery_id for c in claimed]
        self.until = claimed[0].leased_until
        self.lost: set[uuid.UUID] = set()
        self.broken = False  # a renewal failed: start nothing more
        self._lock = threading.Lock()
        lease = float(worker.lease_seconds)
        self.renew_below = min(lease / 2, 2 * worker.policy.timeout_seconds)
        self.tick = self.renew_below / 4

    def _left(self) -> float:
        return (self.until - self.worker.clock()).total_seconds()

    def keep(self) -> None:
        """Renew the lease if little of it is left (thread-safe)."""
        with self._lock:
            if self.broken or self._left() >= self.renew_below:
                return
            held = [i for i in self.ids if i not in self.lost]
            until = self.worker.clock() + dt.timedelta(seconds=self.worker.lease_seconds)
            try:
                with self.worker.db.session() as session:
                    renewed = webhooks.renew(session, held, self.until, until)
            except Exception:
                # the database went away: whatever is not yet sent stays unsent
                log.exception("lease renewal failed", holder=self.worker.holder)
                self.broken = True
                return
            self.lost.update(i for i in held if i not in renewed)
            self.until = until
            if self.lost:
                log.warning("deliveries no longer leased", lost=len(self.lost))

    def take(self, claimed: webhooks.Claimed) -> webhooks.Claimed | None:
        """``claimed`` with its current lease, if it may be sent now; None if not."""
        self.keep()
        with self._lock:
            if self.broken or claimed.delivery_id in self.lost:
                return None
            return replace(claimed, leased_until=self.until)

    def current(self, claimed: webhooks.Claimed) -> webhooks.Claimed:
        with self._lock:
            return replace(claimed, leased_until=self.until)


class Worker:
    """One worker loop. ``clock`` and ``policy`` may be injected (tests); HTTP is real."""

    def __init__(
        self,
        db: Database | None = None,
        *,
        batch: int = 50,
        poll_seconds: float = 1.0,
        concurrency: int | None = None,
        policy: webhooks.Policy | None = None,
        clock: Callable[[], dt.datetime] = now,
        jobs: bool = True,
        lease_seconds: int | None = None,
    ) -> None:
        settings = get_settings()
        self.db = db or get_db()
        self.batch = batch
        self.poll = poll_seconds
        self.concurrency = concurrency or settings.webhook_concurrency
        self.policy = policy or webhooks.Policy.from_settings()
        self.clock = clock
        self.jobs = jobs
        self.lease_seconds = lease_seconds or settings.webhook_lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _send(
        self, claimed: webhooks.Claimed, client: httpx.Client, lease: BatchLease
    ) -> webhooks.Result | None:
        if self._stop.is_set():
            return None
        held = lease.take(claimed)
        if held is None:  # no longer ours: sending it could deliver it twice
            return None
        return webhooks.deliver(held, client, self.policy.timeout_seconds, self.clock)

    def deliver_batch(self, client: httpx.Client, pool: ThreadPoolExecutor) -> int:
        """Claim, send and record one batch; the number of deliveries attempted."""
        with self.db.session() as session:
            claimed = webhooks.claim(session, self.batch, self.clock(), self.lease_seconds)
            if not claimed:
                return 0
            lease = BatchLease(self, claimed)
            futures = [pool.submit(self._send, c, client, lease) for c in claimed]
            # while the batch is out, keep its lease (sent but unrecorded ones included)
            while wait(futures, timeout=lease.tick).not_done:
                lease.keep()
            sent = [f.result() for f in futures]
            # each outcome under the lease held now (it may have been renewed meanwhile)
            results = [replace(r, claimed=lease.current(r.claimed)) for r in sent if r is not None]
            webhooks.record_outcomes(session, results, self.policy, self.holder, self.clock())
            left = [
                lease.current(c)
                for c, r in zip(claimed, sent, strict=True)
                if r is None and c.delivery_id not in lease.lost
            ]
            if left:
                webhooks.release(session, left)
        ok = sum(1 for r in results if r.ok)
        self.delivered += ok
        self.failed += len(results) - ok
        return len(results)

    def run_jobs(self) -> dict[str, int]:
        with self.db.session() as session:
            return run_due_jobs(session, self.holder, self.clock())

    def run(self, once: bool = False) -> int:
        """Loop until ``stop()`` (or one turn with ``once``); deliveries attempted."""
        attempted = 0
        next_jobs = 0.0
        with (
            httpx.Client(
                limits=httpx.Limits(max_connections=self.concurrency * 2),
                follow_redirects=False,  # a 3xx is a failure, as documented
            ) as client,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="kopilka-hook") as pool,
        ):
            while not self._stop.is_set():
                try:
                    if self.jobs and time.monotonic() >= next_jobs:
                        self.run_jobs()
                        next_jobs = time.monotonic() + JOBS_CHECK_SECONDS
                    n = self.deliver_batch(client, pool)
                except Exception:
                    if once:
                        raise
                    # the database went away, say: log, pause, carry on (leases protect)
                    log.exception("worker turn failed", holder=self.holder)
                    self._stop.wait(ERROR_PAUSE_SECONDS)
                    continue
                attempted += n
                if once:
                    break
                if n == 0:
                    self._stop.wait(self.poll)
        return attempted


def main(once: bool = False, batch: int = 50, concurrency: int | None = None) -> int:
    """The body of ``kopilka worker``: every job module loaded, SIGTERM/SIGINT handled."""
    names = load_jobs()
    worker = Worker(batch=batch, concurrency=concurrency)
    if once:
        return worker.run(once=True)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("worker stopping", signal=signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started", holder=worker.holder, jobs=names)
    n = worker.run()
    log.info("worker stopped", holder=worker.holder, delivered=worker.delivered)
    return n


# ---------------------------------------------------------------------------- in-process


class EmbeddedWorker:
    """A worker in a daemon thread of the API process (``kopilka serve`` on SQLite)."""

    def __init__(self, worker: Worker | None = None) -> None:
        self.worker = worker or Worker()
        self.thread = threading.Thread(target=self._run, name="kopilka-worker", daemon=True)

    def _run(self) -> None:
        self.worker.run()

    def start(self) -> None:
        self.thread.start()
        log.info("embedded worker started", holder=self.worker.holder)

    def stop(self, timeout: float = 15.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)


def embedded_enabled() -> bool:
    setting = get_settings().embedded_worker
    return get_db().dialect == "sqlite" if setting is None else setting


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The app's lifespan: a worker in-process when ``KOPILKA_EMBEDDED_WORKER`` says so
    (by default on the embedded SQLite database only, so the demo needs one command)."""
    if not embedded_enabled():
        yield
        return
    load_jobs()
    embedded = EmbeddedWorker()
    embedded.start()
    try:
        yield
    finally:
        await asyncio.to_thread(embedded.stop)
