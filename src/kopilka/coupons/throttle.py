"""Brute-force protection: failed code look-ups count against the caller.

A caller (an API key, a member, or an address) that sends more than
``KOPILKA_COUPON_FAILURE_LIMIT`` unknown codes within a fixed window of
``KOPILKA_COUPON_FAILURE_WINDOW_SECONDS`` gets 429 ``rate_limited`` with ``Retry-After`` for
every coupon check until the window ends, for known codes too (so the block cannot be used
as an oracle). The counters live in the database, so every process shares them.

A failure must count even when the request that found it rolls back (a calculation never
commits; a confirmation may fail for another reason), and on SQLite a second writer
cannot start while the request's transaction holds the lock. So failures are noted on the
session and written in a short transaction of their own as soon as the session's
transaction ends, whichever way it ends.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction

from kopilka.core.config import get_settings
from kopilka.core.errors import Problem
from kopilka.coupons.models import CouponAttempt

_PENDING = "kopilka.coupons.failures"
_HOOKED = "kopilka.coupons.failures_hooked"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def window_start(at: dt.datetime, seconds: int) -> dt.datetime:
    """The start of the fixed window that holds ``at``."""
    elapsed = (at - EPOCH).total_seconds()
    return EPOCH + dt.timedelta(seconds=math.floor(elapsed / seconds) * seconds)


def blocked_for(session: Session, caller: str, at: dt.datetime) -> int:
    """Seconds the caller must still wait (0: not blocked)."""
    settings = get_settings()
    window = settings.coupon_failure_window_seconds
    start = window_start(at, window)
    failures = session.execute(
        select(CouponAttempt.failures).where(
            CouponAttempt.caller == caller, CouponAttempt.window_start == start
        )
    ).scalar_one_or_none()
    if failures is None or failures < settings.coupon_failure_limit:
        return 0
    end = start + dt.timedelta(seconds=window)
    return max(1, math.ceil((end - at).total_seconds()))


def check(session: Session, caller: str | None, at: dt.datetime) -> None:
    """429 ``rate_limited`` (with ``Retry-After``) if the caller is blocked."""
    if caller is None:
        return
    wait = blocked_for(session, caller, at)
    if wait:
        raise Problem(
            429,
            "rate_limited",
            f"too many unknown coupon codes; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            extra={"retry_after": wait},
        )


def record(engine: Engine, caller: str, failures: int, at: dt.datetime) -> None:
    """Add failures to the caller's counter, in a transaction of its own."""
    if failures <= 0:
        return
    window = get_settings().coupon_failure_window_seconds
    start = window_start(at, window)
    insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(CouponAttempt)
        .values(caller=caller, window_start=start, failures=failures)
        .on_conflict_do_update(
            index_elements=["caller", "window_start"],
            set_={"failures": CouponAttempt.failures + failures},
        )
    )
    with Session(bind=engine) as session:
        session.execute(stmt)
        # older windows of this caller are of no use any more
        session.execute(
            delete(CouponAttempt).where(
                CouponAttempt.caller == caller,
                CouponAttempt.window_start < start - dt.timedelta(seconds=window),
            )
        )
        session.commit()


def defer(session: Session, caller: str, failures: int, at: dt.datetime) -> None:
    """Count failures once the session's current transaction ends (commit or rollback)."""
    if failures <= 0:
        return
    session.info.setdefault(_PENDING, []).append((caller, failures, at))
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_transaction_end", _flush)


def _flush(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:  # a savepoint: the outer transaction goes on
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    for caller, failures, at in pending:
        record(engine, caller, failures, at)
