"""The rollup as a scheduled job of ``kopilka worker`` (found by ``kopilka.worker.jobs``
through this module's name) and as ``kopilka reports rollup``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.program.service import current_program
from kopilka.reports import snapshots
from kopilka.reports.rollup import RollupResult, rollup
from kopilka.worker.jobs import job

EVERY_SECONDS = 300


def run_rollup(
    full: bool = False, settle_seconds: int | None = None, session: Session | None = None
) -> RollupResult:
    """One rollup in its own transaction (committed)."""
    settle = get_settings().reports_settle_seconds if settle_seconds is None else settle_seconds
    if session is not None:
        tz = current_program(session).spec.timezone
        result = rollup(session, tz, full=full, settle_seconds=settle)
        snapshots.refresh(session)
        session.commit()
        return result
    with get_db().session() as own:
        tz = current_program(own).spec.timezone
        result = rollup(own, tz, full=full, settle_seconds=settle)
        snapshots.refresh(own)
        own.commit()
        return result


@job("reports.rollup", every_seconds=EVERY_SECONDS)
def _rollup_job(session: Session, at: dt.datetime) -> int:
    settle = get_settings().reports_settle_seconds
    result = rollup(session, current_program(session).spec.timezone, at=at, settle_seconds=settle)
    # the slow reports of the dashboards' default view, on what the rollup just made
    snapshots.refresh(session)
    return result.days
