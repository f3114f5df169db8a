"""Scheduled jobs of coupons, run by ``kopilka worker`` under its leases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kopilka.core.jobs import job
from kopilka.coupons import issue


@job("coupons.generate", every_seconds=5)
def generate_codes(session: Session, at: dt.datetime) -> int:
    """Generate the codes of queued pools (``POST /coupon-pools/{id}/generate`` for more
    than ``KOPILKA_COUPON_SYNC_GENERATE_MAX``), chunk by chunk, each committed with its
    progress; a run stops after four minutes and the next one goes on, so a worker that
    died mid-way is simply resumed."""
    return issue.generate_queued(session)
