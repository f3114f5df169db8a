"""The ledger's jobs that turn the passing of time into events: points about to expire, and pending
points that have become available. Each notice has an idempotency key, so a job that runs
twice, or on two workers, writes it once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core.errors import Problem
from kopilka.core.jobs import job
from kopilka.core.money import MAX_PRECISION, fmt
from kopilka.events.service import emit
from kopilka.ledger.models import Account, Entry, Lot
from kopilka.ledger.service import currency_row, expiring_within

EXPIRING_NOTICE_DAYS = 7
# Lots that became available longer ago than this are not announced (a worker that was
# down for days does not flood members with stale notices).
AVAILABLE_LOOKBACK = dt.timedelta(days=2)


def _formatter(session: Session) -> Callable[[str, Decimal], str]:
    """Amounts as the currency writes them ("31.49", not "31.4900")."""
    precision: dict[str, int] = {}

    def format_(currency: str, amount: Decimal) -> str:
        if currency not in precision:
            try:
                precision[currency] = currency_row(session, currency).precision
            except Problem:  # a currency the programme no longer has: as stored
                precision[currency] = MAX_PRECISION
        return fmt(amount, precision[currency])

    return format_


@job("ledger.expiring_notices", every_seconds=3600)
def expiring_notices(session: Session, at: dt.datetime) -> int:
    """``points.expiring`` once per member, currency and expiry moment, a week before."""
    amount_str = _formatter(session)
    n = 0
    for member_id, currency, amount, expires_at in expiring_within(
        session, at, EXPIRING_NOTICE_DAYS
    ):
        emit(
            session,
            "points.expiring",
            {
                "member_id": str(member_id),
                "currency": currency,
                "amount": amount_str(currency, amount),
                "expires_at": expires_at.isoformat(),
            },
            member_id=member_id,
            key=f"expiring:{member_id}:{currency}:{expires_at.isoformat()}",
        )
        n += 1
    return n


@job("ledger.available_notices", every_seconds=3600)
def available_notices(session: Session, at: dt.datetime) -> int:
    """``points.available`` once per lot that was pending and has matured."""
    # A read of the ledger's lots (no write): the ledger has no query for this yet.
    rows = session.execute(
        select(
            Lot.id,
            Account.member_id,
            Account.currency,
            Lot.remaining,
            Lot.available_at,
            Entry.id,
            Entry.purchase_id,
        )
        .join(Account, Account.id == Lot.account_id)
        .join(Entry, Entry.id == Lot.entry_id)
        .where(
            Lot.available_at <= at,
            Lot.available_at > at - AVAILABLE_LOOKBACK,
            Lot.available_at > Entry.created_at,  # it was pending when written
            Lot.remaining > 0,
            Account.member_id.is_not(None),
        )
        .order_by(Lot.available_at, Lot.id)
    ).all()
    amount_str = _formatter(session)
    for lot_id, member_id, currency, remaining, available_at, entry_id, purchase_id in rows:
        emit(
            session,
            "points.available",
            {
                "member_id": str(member_id),
                "currency": currency,
                "amount": amount_str(currency, remaining),
                "available_at": available_at.isoformat(),
                "entry_id": str(entry_id),
                "purchase_id": str(purchase_id) if purchase_id else None,
            },
            member_id=member_id,
            key=f"available:{lot_id}",
        )
    return len(rows)
