"""The ledger's housekeeping jobs, run by ``kopilka worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.ledger.service import expire_due

EXPIRE_BATCH = 500


@job("ledger.expire", every_seconds=300)
def expire(session: Session, at: dt.datetime) -> int:
    """Expiry entries of lots expired by now (each batch committed; idempotent)."""
    total = 0
    while True:
        n = expire_due(session, at, limit=EXPIRE_BATCH)
        session.commit()
        total += n
        if n < EXPIRE_BATCH:
            return total
