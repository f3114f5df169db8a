"""Scheduled jobs: leases, intervals, failures, their last run in the API."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from kopilka.core import jobs
from kopilka.core.db import Database, make_engine, now
from kopilka.core.jobs import JobLease
from tests.conftest import KeyFactory


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Test jobs are removed from the registry afterwards."""
    names: list[str] = []
    yield names
    for n in names:
        jobs.JOBS.pop(n, None)


def _register(names: list[str], name: str, every: int, fn: jobs.JobFn) -> None:
    jobs.job(name, every_seconds=every)(fn)
    names.append(name)


def test_a_job_runs_once_per_interval_under_a_lease(db: Database, registered: list[str]) -> None:
    ran: list[dt.datetime] = []

    def fn(session: Session, at: dt.datetime) -> int:
        ran.append(at)
        return 2

    _register(registered, "test.job", 60, fn)
    t = now()
    with db.session() as s:
        # when two workers look at 0 s and 10 s, then one at 61 s
        assert jobs.run_due_jobs(s, "a", t, only={"test.job"}) == {"test.job": 2}
        assert jobs.run_due_jobs(s, "b", t + dt.timedelta(seconds=10), only={"test.job"}) == {}
        jobs.run_due_jobs(s, "b", t + dt.timedelta(seconds=61), only={"test.job"})
        row = s.get(JobLease, "test.job")
        assert row is not None
        s.refresh(row)
    # then it ran at 0 s and 61 s; its row shows the last run, its lease given back
    assert ran == [t, t + dt.timedelta(seconds=61)]
    assert (row.runs, row.last_result, row.holder, row.leased_until) == (2, "ok: 2", "b", None)
    assert row.last_started_at == t + dt.timedelta(seconds=61)


def test_two_workers_at_the_same_moment_run_a_job_once(db: Database, registered: list[str]) -> None:
    calls: list[str] = []

    def slow(session: Session, at: dt.datetime) -> int:
        calls.append(threading.current_thread().name)
        time.sleep(0.3)
        return 1

    _register(registered, "test.slow", 60, slow)
    t = now()
    url = db.engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(3)

    def worker(holder: str) -> None:
        own = Database(make_engine(url=url))
        try:
            with own.session() as s:
                barrier.wait()
                jobs.run_due_jobs(s, holder, t, only={"test.slow"})
        finally:
            own.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(calls) == 1


def test_a_failed_run_is_recorded_and_its_lease_given_back(
    db: Database, registered: list[str]
) -> None:
    def broken(session: Session, at: dt.datetime) -> int:
        from kopilka.events.service import emit

        emit(session, "member.updated", {"n": "never"})  # rolled back with the failure
        raise RuntimeError("boom")

    _register(registered, "test.broken", 30, broken)
    t = now()
    with db.session() as s:
        assert jobs.run_due_jobs(s, "a", t, only={"test.broken"}) == {}
        row = s.get(JobLease, "test.broken")
        assert row is not None
        assert (row.last_result, row.leased_until, row.runs) == (
            "failed: RuntimeError: boom",
            None,
            1,
        )
        from kopilka.events.models import OutboxEvent

        assert s.query(OutboxEvent).count() == 0
        # and it is tried again after its interval
        jobs.run_due_jobs(s, "a", t + dt.timedelta(seconds=31), only={"test.broken"})
        s.refresh(row)
        assert row.runs == 2


def test_a_lease_held_by_a_dead_worker_blocks_until_it_runs_out(
    db: Database, registered: list[str]
) -> None:
    ran: list[str] = []
    _register(registered, "test.leased", 1, lambda s, at: ran.append("x") or 1)
    t = now()
    with db.session() as s:
        jobs.run_due_jobs(s, "a", t, only={"test.leased"})
        # a worker took the lease and died (SIGKILL) mid-run
        s.execute(
            update(JobLease)
            .where(JobLease.name == "test.leased")
            .values(holder="dead", leased_until=t + dt.timedelta(seconds=600))
        )
        s.commit()
        jobs.run_due_jobs(s, "b", t + dt.timedelta(seconds=300), only={"test.leased"})
        assert ran == ["x"]
        jobs.run_due_jobs(s, "b", t + dt.timedelta(seconds=601), only={"test.leased"})
        assert ran == ["x", "x"]


def test_every_jobs_module_is_found() -> None:
    names = jobs.load_jobs()
    assert {
        "ledger.expire",
        "ledger.expiring_notices",
        "ledger.available_notices",
        "purchases.release_holds",
        "reports.rollup",
    } <= set(names)
    with pytest.raises(ValueError):
        jobs.job("test.zero", every_seconds=0)


def test_before_any_programme_the_jobs_wait_and_none_fails(db: Database) -> None:
    # given a fresh installation whose worker runs before `kopilka program apply` (the
    # embedded SQLite default: `kopilka serve` first, as the README's first steps go)
    names = jobs.load_jobs()
    with db.session() as s:
        # when every job is due
        jobs.run_due_jobs(s, "w1", now())
        rows = {r.name: r.last_result for r in jobs.job_runs(s)}
    # then those that need the programme wait, and nothing is a failure (issue 19: the
    # rollup and the tier re-evaluation logged tracebacks on a fresh server)
    assert set(rows) == set(names)
    assert rows["reports.rollup"] == "waiting: no programme applied yet"
    assert rows["tiers.reevaluate"] == "waiting: no programme applied yet"
    assert {n: r for n, r in rows.items() if not r or r.startswith("failed")} == {}


@pytest.mark.usefixtures("program")
def test_jobs_api_shows_each_jobs_last_run(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    jobs.load_jobs()
    t = now()
    with db.session() as s:
        jobs.run_due_jobs(s, "w1", t, only={"ledger.expire"})
    r = client.get("/api/v1/jobs", headers=auth("analyst"))
    assert r.status_code == 200
    items = {i["name"]: i for i in r.json()["items"]}
    assert items["ledger.expire"]["every_seconds"] == 300
    assert items["ledger.expire"]["runs"] == 1
    assert items["ledger.expire"]["last_result"] == "ok: 0"
    assert items["ledger.expire"]["running"] is False
    assert items["ledger.expire"]["last_started_at"] == t.isoformat()
    assert items["purchases.release_holds"]["runs"] == 0
    assert items["purchases.release_holds"]["last_started_at"] is None
    assert client.get("/api/v1/jobs", headers=auth("cashier")).status_code == 403
