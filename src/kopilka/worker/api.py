"""``GET /api/v1/jobs``: each scheduled job, its interval and its last run."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from kopilka.core.auth import SessionDep, require
from kopilka.core.db import now
from kopilka.core.jobs import JOBS, job_runs, load_jobs
from kopilka.core.principal import Principal
from kopilka.worker.schemas import JobList

router = APIRouter(tags=["jobs"])

Reader = Annotated[Principal, Depends(require("admin", "analyst"))]


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


@router.get("/jobs", response_model=JobList)
def jobs(session: SessionDep, _: Reader) -> dict[str, Any]:
    """Every job the worker runs (``running`` while a worker holds its lease)."""
    load_jobs()
    at = now()
    rows = {j.name: j for j in job_runs(session)}
    items = []
    for name in sorted(set(JOBS) | set(rows)):
        row = rows.get(name)
        spec = JOBS.get(name)
        items.append(
            {
                "name": name,
                "every_seconds": spec.every_seconds if spec else None,
                "runs": row.runs if row else 0,
                "running": bool(row and row.leased_until and row.leased_until > at),
                "holder": row.holder if row else None,
                "last_started_at": _iso(row.last_started_at) if row else None,
                "last_finished_at": _iso(row.last_finished_at) if row else None,
                "last_result": row.last_result if row else None,
            }
        )
    return {"items": items}
