"""``kopilka worker``: delivers the outbox to webhooks and runs the scheduled jobs.

Each turn of the loop runs the jobs that are due (every few seconds), then claims a batch of
due deliveries, POSTs them concurrently (at most one per member and endpoint in a batch, so
order per member holds) and records the outcomes in one transaction. SIGTERM (or
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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog

from kopilka.core.config import get_settings
from kopilka.core.db import Database, get_db, now
from kopilka.webhooks import service as webhooks
from kopilka.worker.jobs import load_jobs, run_due_jobs

log = structlog.get_logger("kopilka.worker")

JOBS_CHECK_SECONDS = 5.0
ERROR_PAUSE_SECONDS = 5.0


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

    def _send(self, claimed: webhooks.Claimed, client: httpx.Client) -> webhooks.Result | None:
        if self._stop.is_set():
            return None
        return webhooks.deliver(claimed, client, self.policy.timeout_seconds, self.clock)

    def deliver_batch(self, client: httpx.Client, pool: ThreadPoolExecutor) -> int:
        """Claim, send and record one batch; the number of deliveries attempted."""
        with self.db.session() as session:
            claimed = webhooks.claim(session, self.batch, self.clock(), self.lease_seconds)
            if not claimed:
                return 0
            sent = list(pool.map(lambda c: self._send(c, client), claimed))
            results = [r for r in sent if r is not None]
            webhooks.record_outcomes(session, results, self.policy, self.holder, self.clock())
            left = [c for c, r in zip(claimed, sent, strict=True) if r is None]
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
