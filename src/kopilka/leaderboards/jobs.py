"""The leaderboards' scheduled job: the buckets' additions summed (``service.compact``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.leaderboards.service import compact

EVERY_SECONDS = 60


@job("leaderboards.compact", every_seconds=EVERY_SECONDS)
def _compact_job(session: Session, at: dt.datetime) -> int:
    return compact(session)
