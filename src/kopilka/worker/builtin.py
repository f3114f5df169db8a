"""Housekeeping jobs of the ledger and purchases, run by ``kopilka worker``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.worker.jobs import job

EXPIRE_BATCH = 500


@job("ledger.expire", every_seconds=300)
def expire(session: Session, at: dt.datetime) -> int:
    """Expiry entries of lots expired by now (each batch committed; idempotent)."""
    from kopilka.ledger.service import expire_due

    total = 0
    while True:
        n = expire_due(session, at, limit=EXPIRE_BATCH)
        session.commit()
        total += n
        if n < EXPIRE_BATCH:
            return total


@job("purchases.release_holds", every_seconds=30)
def release_holds(session: Session, at: dt.datetime) -> int:
    """Holds not committed in time are released."""
    from kopilka.purchases.service import release_expired_holds

    return release_expired_holds(session, at)
