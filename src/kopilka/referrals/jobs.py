"""The referrals' scheduled job (``kopilka worker``): rewards stand when the hold is over."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.referrals.service import release_due

EVERY_SECONDS = 60


@job("referrals.release", every_seconds=EVERY_SECONDS)
def _release_job(session: Session, at: dt.datetime) -> int:
    return release_due(session, at)
