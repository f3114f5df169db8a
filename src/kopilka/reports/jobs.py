"""The rollup as a scheduled job of ``kopilka worker`` (found by ``kopilka.core.jobs``
through this module's name) and as ``kopilka reports rollup``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.core.jobs import job
from kopilka.program.service import current_program
from kopilka.reports.rollup import RollupResult, rollup

EVERY_SECONDS = 300


def run_rollup(
    full: bool = False,
    settle_seconds: int | None = None,
    session: Session | None = None,
    at: dt.datetime | None = None,
) -> RollupResult:
    """One rollup, committed."""
    settle = get_settings().reports_settle_seconds if settle_seconds is None else settle_seconds
    if session is None:
        with get_db().session() as own:
            return run_rollup(full, settle, own, at)
    tz = current_program(session).spec.timezone
    return rollup(session, tz, at=at, full=full, settle_seconds=settle)


@job("reports.rollup", every_seconds=EVERY_SECONDS)
def _rollup_job(session: Session, at: dt.datetime) -> int:
    return run_rollup(session=session, at=at).days
