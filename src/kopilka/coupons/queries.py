"""Reading codes: a code's status, a code found by its text (throttled against guessing),
a member's coupons, a pool's codes listed and exported. Other domains read coupons here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core import pagination
from kopilka.core.db import Database, now
from kopilka.core.errors import (
    Problem,
)
from kopilka.core.money import fmt
from kopilka.coupons import codes as codegen
from kopilka.coupons import throttle
from kopilka.coupons.models import Coupon, CouponPool, CouponUse
from kopilka.coupons.pools import get_pool, iso_or_none, reward_json


def code_status(pool: CouponPool, coupon: Coupon, at: dt.datetime) -> str:
    """``available``, ``used`` (a single-use code taken), ``exhausted`` (a limit of N
    reached), ``expired``, ``not_started`` or ``paused``."""
    if pool.status != "active":
        return "paused"
    if pool.valid_until is not None and at >= pool.valid_until:
        return "expired"
    if pool.valid_from is not None and at < pool.valid_from:
        return "not_started"
    if pool.uses_per_code is not None and coupon.uses >= pool.uses_per_code:
        return "used" if pool.uses_per_code == 1 else "exhausted"
    return "available"


def find_code(session: Session, raw: str) -> tuple[Coupon, CouponPool] | None:
    key = codegen.lookup_key(raw)
    if key is None:
        return None
    row = session.execute(
        select(Coupon, CouponPool)
        .join(CouponPool, CouponPool.id == Coupon.pool_id)
        .where(Coupon.lookup == key)
    ).first()
    return None if row is None else (row[0], row[1])


def _unknown(session: Session, caller: str | None, at: dt.datetime) -> Problem:
    if caller is not None:
        throttle.defer(session, caller, 1, at)
    return Problem(404, "coupon_invalid", "no such coupon code")


def get_code(
    session: Session,
    raw: str,
    caller: str | None,
    at: dt.datetime | None = None,
    member_id: uuid.UUID | None = None,
    public_only: bool = False,
) -> tuple[Coupon, CouponPool]:
    """The code and its pool, for a caller subject to brute-force protection; 404
    ``coupon_invalid`` (counted as a failure) if it is unknown or, when ``member_id`` is
    given, not that member's, or, with ``public_only``, anybody's personal code."""
    at = at or now()
    throttle.check(session, caller, at)
    found = find_code(session, raw)
    if (
        found is None
        or (member_id is not None and found[0].member_id != member_id)
        or (public_only and found[0].member_id is not None)
    ):
        raise _unknown(session, caller, at)
    return found


def code_json(
    session: Session, coupon: Coupon, pool: CouponPool, at: dt.datetime, history: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": coupon.code,
        "status": code_status(pool, coupon, at),
        "source": coupon.source,
        "member_id": str(coupon.member_id) if coupon.member_id else None,
        "uses": coupon.uses,
        "uses_per_code": pool.uses_per_code,
        "uses_left": None
        if pool.uses_per_code is None
        else max(0, pool.uses_per_code - coupon.uses),
        "pool": {"id": str(pool.id), "name": pool.name, "description": pool.description},
        "reward": reward_json(pool),
        "valid_from": iso_or_none(pool.valid_from),
        "valid_until": iso_or_none(pool.valid_until),
        "created_at": iso_or_none(coupon.created_at),
    }
    if history:
        uses = session.execute(
            select(CouponUse)
            .where(CouponUse.coupon_id == coupon.id)
            .order_by(CouponUse.used_at, CouponUse.id)
            .limit(1000)
        ).scalars()
        out["history"] = [
            {
                "purchase_id": str(u.purchase_id),
                "member_id": str(u.member_id) if u.member_id else None,
                "used_at": iso_or_none(u.used_at),
                "released_at": iso_or_none(u.released_at),
                "discount": fmt(u.discount, 2),
                "points": u.points or {},
            }
            for u in uses
        ]
    return out


def member_coupons(
    session: Session,
    member_id: uuid.UUID,
    at: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """The personal codes of a member, newest first, each with its status."""
    at = at or now()
    q = (
        select(Coupon, CouponPool)
        .join(CouponPool, CouponPool.id == Coupon.pool_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id.desc())
        .limit(limit + 1)
    )
    if (last := pagination.after_number(cursor)) is not None:
        q = q.where(Coupon.id < last)
    rows = session.execute(q).all()
    items = [code_json(session, c, p, at, history=False) for c, p in rows[:limit]]
    return items, (str(rows[limit - 1][0].id) if len(rows) > limit else None)


def list_codes(
    session: Session, pool_id: uuid.UUID, after: int | None = None, limit: int = 100
) -> tuple[list[Coupon], int | None]:
    """A pool's codes in the order they were made, after the code id ``after``."""
    q = select(Coupon).where(Coupon.pool_id == pool_id).order_by(Coupon.id).limit(limit + 1)
    if after is not None:
        q = q.where(Coupon.id > after)
    rows = list(session.execute(q).scalars())
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def unused_codes(
    session: Session, pool_id: uuid.UUID, after: int | None, limit: int
) -> tuple[list[Coupon], int | None]:
    """Codes of the pool with no use taken, for printing."""
    q = (
        select(Coupon)
        .where(Coupon.pool_id == pool_id, Coupon.uses == 0)
        .order_by(Coupon.id)
        .limit(limit + 1)
    )
    if after is not None:
        q = q.where(Coupon.id > after)
    rows = list(session.execute(q).scalars())
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


EXPORT_COLUMNS = ("code", "status", "uses", "member_id", "source", "created_at")


def export_csv(db: Database, pool_id: uuid.UUID, batch: int = 10_000) -> Iterator[bytes]:
    """The pool's codes as CSV, streamed in batches (each batch its own short read, so
    an export of millions of codes holds no transaction open for long)."""
    yield ",".join(EXPORT_COLUMNS).encode() + b"\r\n"
    after: int | None = None
    while True:
        buf = io.StringIO()
        writer = csv.writer(buf)
        with db.session() as session:
            pool = get_pool(session, pool_id)
            at = now()
            rows, after = list_codes(session, pool_id, after, batch)
            for c in rows:
                writer.writerow(
                    [
                        c.code,
                        code_status(pool, c, at),
                        c.uses,
                        c.member_id or "",
                        c.source,
                        iso_or_none(c.created_at),
                    ]
                )
        yield buf.getvalue().encode()
        if after is None:
            return


def used_on(session: Session, purchase_id: uuid.UUID) -> list[tuple[CouponUse, str, str]]:
    """The codes a purchase holds (uses not released), by code id: each use, its code and
    its pool's name."""
    return [
        (use, code, pool_name)
        for use, code, pool_name in session.execute(
            select(CouponUse, Coupon.code, CouponPool.name)
            .join(Coupon, Coupon.id == CouponUse.coupon_id)
            .join(CouponPool, CouponPool.id == CouponUse.pool_id)
            .where(CouponUse.purchase_id == purchase_id, CouponUse.released_at.is_(None))
            .order_by(CouponUse.coupon_id)
        ).all()
    ]


def pools_by_ref(session: Session, ref: str) -> list[CouponPool]:
    """The coupon pools ``ref`` names: the one with that id if ``ref`` is a UUID, else
    those with that name; at most two (enough to tell one from an ambiguous name)."""
    q = select(CouponPool)
    try:
        q = q.where(CouponPool.id == uuid.UUID(ref))
    except ValueError:
        q = q.where(CouponPool.name == ref)
    return list(session.execute(q.limit(2)).scalars())
