"""The purchases' housekeeping jobs, run by ``kopilka worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.purchases.holds import release_expired_holds


@job("purchases.release_holds", every_seconds=30)
def release_holds(session: Session, at: dt.datetime) -> int:
    """Holds not committed in time are released."""
    return release_expired_holds(session, at)
