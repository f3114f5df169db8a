"""The tiers' scheduled job, run by ``kopilka worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.tiers.service import reevaluate as run


@job("tiers.reevaluate", every_seconds=3600)
def reevaluate(session: Session, at: dt.datetime) -> int:
    """Members into and out of grace, down after it, up where they qualify (idempotent;
    each batch committed)."""
    return run(session, at)
