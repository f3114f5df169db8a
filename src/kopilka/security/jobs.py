"""Scheduled housekeeping of the security tables, run by ``kopilka worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.security import velocity
from kopilka.security.models import RateCounter


@job("security.prune", every_seconds=3600)
def prune(session: Session, at: dt.datetime) -> int:
    """Forget rate-limit windows that have slid by and velocity events past look-back."""
    result = session.execute(
        delete(RateCounter).where(RateCounter.expires_at < int(at.timestamp()))
    )
    counters = int(getattr(result, "rowcount", 0) or 0)
    return counters + velocity.prune(session, at)


@job("security.velocity", every_seconds=30)
def velocity_scan(session: Session, at: dt.datetime) -> int:
    """Run the velocity rules on the purchases recorded since the last look."""
    return velocity.scan_purchases(session, at)
