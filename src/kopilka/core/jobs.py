"""Scheduled jobs: a registry others add to, run by ``kopilka worker`` under leases (the
runner is ``kopilka.worker.loop``; the registry and its table sit in core so that every
domain can offer jobs without importing the worker, which delivers their webhooks).

Register a job in a module named ``kopilka/<area>/jobs.py`` and name that module in
``kopilka.wiring.JOB_MODULES`` (importing it registers its jobs)::

    from kopilka.core.jobs import job

    @job("coupons.generate", every_seconds=60)
    def generate(session: Session, at: datetime) -> int:
        ...  # idempotent work; return how many things it did

Each job has a row in ``job_leases``. A worker takes the lease with one conditional UPDATE
(free, and the interval since the last start has passed), so several workers never run the
same job at once; a worker that dies mid-job leaves a lease that simply runs out. The job
runs in the session it is given; it may commit as it goes (long jobs should, in batches),
and what it left uncommitted is committed when it returns, rolled back if it raises.
``GET /api/v1/jobs`` shows each job's last run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog
from sqlalchemy import Integer, String, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from kopilka.core.db import Base, UTCDateTime, now
from kopilka.core.errors import Problem

log = structlog.get_logger("kopilka.worker")


class JobLease(Base):
    """A scheduled job's lease and last run, so several workers never run it at once."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[str | None] = mapped_column(String(500))
    runs: Mapped[int] = mapped_column(Integer, default=0)


JobFn = Callable[[Session, dt.datetime], int]


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: int
    fn: JobFn


JOBS: dict[str, Job] = {}

# The last result of a job that needs the programme, run before any was applied.
WAITING_FOR_PROGRAMME = "waiting: no programme applied yet"

# A lease lasts at least this long, whatever the interval: a job is not taken again by
# another worker while a slow run is still going.
MIN_LEASE_SECONDS = 600


def job(name: str, every_seconds: int) -> Callable[[JobFn], JobFn]:
    """Register a scheduled job (idempotent work; returns how many things it did)."""
    if every_seconds < 1:
        raise ValueError("every_seconds must be at least 1")

    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name, every_seconds, fn)
        return fn

    return register


def load_jobs() -> list[str]:
    """The names of the jobs registered (``kopilka.wiring`` imports every job module)."""
    return sorted(JOBS)


def _ensure_rows(session: Session, names: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for name in names:
        session.execute(insert(JobLease).values(name=name, runs=0).on_conflict_do_nothing())
    session.commit()


def _take(session: Session, j: Job, holder: str, at: dt.datetime) -> bool:
    took = session.execute(
        update(JobLease)
        .where(
            JobLease.name == j.name,
            or_(JobLease.leased_until.is_(None), JobLease.leased_until < at),
            or_(
                JobLease.last_started_at.is_(None),
                JobLease.last_started_at <= at - dt.timedelta(seconds=j.every_seconds),
            ),
        )
        .values(
            holder=holder,
            leased_until=at + dt.timedelta(seconds=max(j.every_seconds, MIN_LEASE_SECONDS)),
            last_started_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(took, "rowcount", 0))


def run_due_jobs(
    session: Session,
    holder: str,
    at: dt.datetime | None = None,
    only: Collection[str] | None = None,
) -> dict[str, int]:
    """Run every job (or those named in ``only``) whose interval has passed, each under its
    lease; what each one that ran returned (a failed job is logged and recorded as its last
    result; one that needs the programme before any is applied waits, quietly)."""
    at = at or now()
    names = sorted(n for n in JOBS if only is None or n in only)
    _ensure_rows(session, names)
    done: dict[str, int] = {}
    for name in names:
        j = JOBS[name]
        if not _take(session, j, holder, at):
            continue
        started = time.perf_counter()
        try:
            n = j.fn(session, at)
            session.commit()
            result = f"ok: {n}"
            done[name] = n
        except Exception as exc:
            session.rollback()
            if isinstance(exc, Problem) and exc.code == "program_not_configured":
                # a fresh installation: the server (with its embedded worker) or a worker
                # runs before `kopilka program apply`; there is nothing to do yet
                result = WAITING_FOR_PROGRAMME
            else:
                result = f"failed: {type(exc).__name__}: {exc}"[:500]
                log.exception("job failed", job=name)
        ms = int((time.perf_counter() - started) * 1e3)
        # runs that found nothing to do are routine: kept out of INFO logs
        (log.debug if result == "ok: 0" else log.info)("job ran", job=name, result=result, ms=ms)
        session.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(
                leased_until=None,
                last_finished_at=now(),
                last_result=result,
                runs=JobLease.runs + 1,
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return done


def job_runs(session: Session) -> list[JobLease]:
    """Every job's row (lease and last run), by name."""
    return list(session.execute(select(JobLease).order_by(JobLease.name)).scalars())
