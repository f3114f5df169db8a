"""Coupons on receipts: evaluated, consumed, released.

The seam for purchases is three functions:

- ``evaluate`` (reads only) answers every code of a receipt ``applied`` or ``rejected`` with
  a reason, and what the applied ones give: money discounts per line (never more than is
  left on a line after the rules' discounts), extra points per currency and line,
  earning multipliers per currency, and the lines made free.
- ``consume`` (in the purchase's transaction) takes the uses: conditional
  ``UPDATE … WHERE uses < limit`` on the code, an atomic upsert on the member's counter
  for the pool, so a single-use code is used once and a limit of N is never exceeded
  whatever the concurrency; a code taken meanwhile is a 409 and the purchase rolls back.
- ``release`` gives the uses of a purchase back (cancel, full return, released hold).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.errors import (
    Problem,
    field_error,
)
from kopilka.core.money import ZERO
from kopilka.coupons import codes as codegen
from kopilka.coupons import rewards, throttle
from kopilka.coupons.models import Coupon, CouponMemberUses, CouponPool, CouponUse
from kopilka.program.service import current_program
from kopilka.rules.engine import ReceiptContext

FAILURE_REASONS = frozenset({"coupon_invalid"})


@dataclass
class CodeResult:
    """One code of a receipt and what became of it."""

    index: int  # position in the request's ``coupons``
    code: str
    status: str  # "applied" | "rejected"
    reason: str | None = None
    coupon_id: int | None = None
    pool_id: uuid.UUID | None = None
    uses_per_code: int | None = None
    uses_per_member: int | None = None
    discounts: list[Decimal] = field(default_factory=list)
    points: dict[str, list[Decimal]] = field(default_factory=dict)
    multipliers: dict[str, Decimal] = field(default_factory=dict)
    free_lines: list[int] = field(default_factory=list)

    @property
    def discount(self) -> Decimal:
        return sum(self.discounts, ZERO)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "reason": self.reason}


@dataclass
class CouponOutcome:
    """What a receipt's codes give. Lines are 0-based, in the order of the receipt."""

    results: list[CodeResult]
    line_discounts: list[Decimal]  # money per line, on top of the rules' discounts
    earn: dict[str, list[Decimal]]  # extra points per currency, per line
    multipliers: dict[str, Decimal]  # currency → factor on the points the rules earn
    free_lines: list[int]  # lines (0-based) made free, wholly or partly, by a coupon
    failures: int = 0  # codes that counted against the caller

    @property
    def applied(self) -> list[CodeResult]:
        return [r for r in self.results if r.status == "applied"]

    def as_json(self) -> list[dict[str, Any]]:
        """The ``coupons`` of a calculate or confirm answer."""
        return [r.as_json() for r in self.results]


def _reject(index: int, code: str, reason: str) -> CodeResult:
    return CodeResult(index=index, code=code, status="rejected", reason=reason)


def _reward(pool: CouponPool) -> rewards.Reward:
    return rewards.Reward(
        kind=pool.reward_kind,
        value=pool.reward_value,
        currency=pool.reward_currency,
        max_discount=pool.max_discount,
        skus=frozenset(pool.skus),
        categories=frozenset(pool.categories),
        free_sku=pool.free_sku,
        free_quantity=pool.free_quantity,
    )


def _needs_member(pool: CouponPool) -> bool:
    return pool.reward_kind in ("points", "multiplier") or pool.uses_per_member is not None


def evaluate(
    session: Session,
    codes: list[str],
    ctx: ReceiptContext,
    member_id: uuid.UUID | None,
    at: dt.datetime,
    after: list[Decimal] | None = None,
    *,
    caller: str | None = None,
    precisions: dict[str, int] | None = None,
) -> CouponOutcome:
    """Answer each code of a receipt and add up what the applied ones give. Reads only.

    ``after``: the money left on each line after the rules' discounts (default: the line
    amounts); coupons never discount a line below zero. ``at``: the moment the validity
    windows are judged at (the time of the request: a back-dated receipt does not revive
    an expired code). ``caller`` (an API key's or member's actor id, or an address):
    unknown codes count against it, and a blocked caller gets 429 ``rate_limited``.

    Codes are taken in the order given; each applied one sees the lines as the ones
    before it left them. Reasons, checked in this order: ``coupon_invalid`` (unknown, or
    a personal code of another member or on a receipt with no member: not told apart),
    ``coupon_not_combinable`` (the same code
    twice), ``coupon_not_applicable`` (pool paused), ``coupon_not_started``,
    ``coupon_expired``, ``coupon_used`` (single-use) / ``coupon_limit_reached`` (the
    code's limit or the member's), ``coupon_not_applicable`` (member needed, store,
    channel, minimum receipt), ``coupon_not_combinable`` (a second code of one pool, or a
    non-stackable code with another), ``coupon_not_applicable`` (it gives nothing here).
    """
    lines = [rewards.Line(ln.sku, ln.category, ln.quantity, ln.unit_price) for ln in ctx.lines]
    n = len(lines)
    left = list(after) if after is not None else [ln.amount for ln in ctx.lines]
    if len(left) != n:
        raise ValueError("after must have one amount per line")
    outcome = CouponOutcome(
        results=[], line_discounts=[ZERO] * n, earn={}, multipliers={}, free_lines=[]
    )
    if not codes:
        return outcome
    throttle.check(session, caller, at)
    if precisions is None:
        precisions = {c.code: c.precision for c in current_program(session).spec.currencies}
    keys = [codegen.lookup_key(c) for c in codes]
    wanted = {k for k in keys if k is not None}
    found: dict[str, tuple[Coupon, CouponPool]] = {}
    if wanted:
        for coupon, pool in session.execute(
            select(Coupon, CouponPool)
            .join(CouponPool, CouponPool.id == Coupon.pool_id)
            .where(Coupon.lookup.in_(wanted))
        ).all():
            found[coupon.lookup] = (coupon, pool)
    member_uses: dict[uuid.UUID, int] = {}
    if member_id is not None and found:
        rows = session.execute(
            select(CouponMemberUses.pool_id, CouponMemberUses.uses).where(
                CouponMemberUses.member_id == member_id,
                CouponMemberUses.pool_id.in_({p.id for _, p in found.values()}),
            )
        ).all()
        member_uses = {row.pool_id: row.uses for row in rows}
    receipt_total = sum(left, ZERO)
    seen: set[str] = set()
    applied_pools: set[uuid.UUID] = set()
    exclusive = False  # a non-stackable code is applied
    for i, (raw, key) in enumerate(zip(codes, keys, strict=True)):
        shown = raw.strip()
        hit = found.get(key) if key is not None else None
        if hit is None:
            outcome.results.append(_reject(i, shown, "coupon_invalid"))
            continue
        coupon, pool = hit
        if coupon.member_id is not None and coupon.member_id != member_id:
            # another member's code, or a personal code on a receipt with no member: told
            # apart from an unknown code by nothing, not even the spelling (regression: an
            # anonymous till was told ``coupon_not_yours``, which revealed that the code
            # exists and is someone's)
            outcome.results.append(_reject(i, shown, "coupon_invalid"))
            continue
        shown = coupon.code
        reason: str | None = _static_reason(pool, coupon, at, key in seen)
        seen.add(coupon.lookup)
        if (
            reason is None
            and pool.uses_per_member is not None
            and member_id is not None
            and member_uses.get(pool.id, 0) >= pool.uses_per_member
        ):
            reason = "coupon_limit_reached"
        if reason is None:
            reason = _condition_reason(pool, ctx, member_id, receipt_total)
        if reason is None and (
            pool.id in applied_pools or (outcome.applied and (exclusive or not pool.stackable))
        ):
            reason = "coupon_not_combinable"
        effect = None
        if reason is None:
            effect = rewards.apply(_reward(pool), lines, left, precisions)
            if effect.empty:
                reason = "coupon_not_applicable"
        if reason is not None or effect is None:
            outcome.results.append(_reject(i, shown, reason or "coupon_not_applicable"))
            continue
        result = CodeResult(
            index=i,
            code=shown,
            status="applied",
            coupon_id=coupon.id,
            pool_id=pool.id,
            uses_per_code=pool.uses_per_code,
            uses_per_member=pool.uses_per_member,
            discounts=effect.discounts,
            points=effect.points,
            multipliers=effect.multipliers,
            free_lines=effect.free_lines,
        )
        outcome.results.append(result)
        applied_pools.add(pool.id)
        exclusive = exclusive or not pool.stackable
        for j, d in enumerate(effect.discounts):
            left[j] -= d
            outcome.line_discounts[j] += d
        for cur, amounts in effect.points.items():
            acc = outcome.earn.setdefault(cur, [ZERO] * n)
            for j, a in enumerate(amounts):
                acc[j] += a
        for cur, factor in effect.multipliers.items():
            outcome.multipliers[cur] = max(factor, outcome.multipliers.get(cur, factor))
        for j in effect.free_lines:
            if j not in outcome.free_lines:
                outcome.free_lines.append(j)
    outcome.failures = sum(1 for r in outcome.results if r.reason in FAILURE_REASONS)
    if caller is not None:
        throttle.defer(session, caller, outcome.failures, at)
    return outcome


def _static_reason(pool: CouponPool, coupon: Coupon, at: dt.datetime, repeated: bool) -> str | None:
    """Reasons that depend on the code alone, not on the receipt."""
    if repeated:
        return "coupon_not_combinable"
    if pool.status != "active":
        return "coupon_not_applicable"
    if pool.valid_from is not None and at < pool.valid_from:
        return "coupon_not_started"
    if pool.valid_until is not None and at >= pool.valid_until:
        return "coupon_expired"
    if pool.uses_per_code is not None and coupon.uses >= pool.uses_per_code:
        return "coupon_used" if pool.uses_per_code == 1 else "coupon_limit_reached"
    return None


def _condition_reason(
    pool: CouponPool, ctx: ReceiptContext, member_id: uuid.UUID | None, total: Decimal
) -> str | None:
    if _needs_member(pool) and member_id is None:
        return "coupon_not_applicable"
    if pool.stores and ctx.store not in pool.stores:
        return "coupon_not_applicable"
    if pool.channels and ctx.channel not in pool.channels:
        return "coupon_not_applicable"
    if pool.min_receipt is not None and total < pool.min_receipt:
        return "coupon_not_applicable"
    return None


def _upsert_member_use(
    session: Session, pool_id: uuid.UUID, member_id: uuid.UUID, limit: int | None
) -> bool:
    """Count one use of the pool for the member unless the limit is reached (one atomic
    statement: the row is created or incremented under its lock)."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CouponMemberUses).values(pool_id=pool_id, member_id=member_id, uses=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["pool_id", "member_id"],
        set_={"uses": CouponMemberUses.uses + 1},
        where=(CouponMemberUses.uses < limit) if limit is not None else None,
    ).returning(CouponMemberUses.uses)
    return session.execute(stmt).first() is not None


def consume(
    session: Session,
    outcome: CouponOutcome,
    purchase_id: uuid.UUID,
    member_id: uuid.UUID | None,
    at: dt.datetime,
) -> None:
    """Take one use of every applied code for the purchase, in the caller's transaction.

    409 ``coupon_used`` / ``coupon_limit_reached`` (naming ``coupons[i]``) if a code was
    taken meanwhile; the caller rolls back. Codes are updated in id order, so concurrent
    receipts with several codes cannot deadlock."""
    for r in sorted(outcome.applied, key=lambda r: r.coupon_id or 0):
        assert r.coupon_id is not None and r.pool_id is not None
        stmt = update(Coupon).where(Coupon.id == r.coupon_id)
        if r.uses_per_code is not None:
            stmt = stmt.where(Coupon.uses < r.uses_per_code)
        taken = session.execute(
            stmt.values(uses=Coupon.uses + 1)
            .returning(Coupon.id)
            .execution_options(synchronize_session=False)
        ).first()
        if taken is None:
            code = "coupon_used" if r.uses_per_code == 1 else "coupon_limit_reached"
            raise Problem(
                409,
                code,
                f"coupon {r.code} was used meanwhile",
                errors=[field_error(f"coupons[{r.index}]", "no use left", code)],
            )
        if member_id is not None and not _upsert_member_use(
            session, r.pool_id, member_id, r.uses_per_member
        ):
            raise Problem(
                409,
                "coupon_limit_reached",
                f"the member has used this campaign's coupons {r.uses_per_member} times",
                errors=[
                    field_error(
                        f"coupons[{r.index}]", "member limit reached", "coupon_limit_reached"
                    )
                ],
            )
        points: dict[str, Any] = {}
        if r.points:
            points["earn"] = {c: str(sum(v, ZERO)) for c, v in r.points.items()}
        if r.multipliers:
            points["multipliers"] = {c: str(f) for c, f in r.multipliers.items()}
        session.add(
            CouponUse(
                coupon_id=r.coupon_id,
                pool_id=r.pool_id,
                member_id=member_id,
                purchase_id=purchase_id,
                discount=r.discount,
                points=points or None,
                used_at=at,
            )
        )
    session.flush()


def release(session: Session, purchase_id: uuid.UUID, at: dt.datetime | None = None) -> int:
    """Give back the uses a purchase holds (cancel, full return, a released hold).
    Idempotent: a use is given back once, even by concurrent calls. Returns how many."""
    at = at or now()
    rows = session.execute(
        update(CouponUse)
        .where(CouponUse.purchase_id == purchase_id, CouponUse.released_at.is_(None))
        .values(released_at=at)
        .returning(CouponUse.coupon_id, CouponUse.pool_id, CouponUse.member_id)
        .execution_options(synchronize_session=False)
    ).all()
    for coupon_id, pool_id, member_id in sorted(rows, key=lambda r: r[0]):
        session.execute(
            update(Coupon)
            .where(Coupon.id == coupon_id, Coupon.uses > 0)
            .values(uses=Coupon.uses - 1)
            .execution_options(synchronize_session=False)
        )
        if member_id is not None:
            session.execute(
                update(CouponMemberUses)
                .where(
                    CouponMemberUses.pool_id == pool_id,
                    CouponMemberUses.member_id == member_id,
                    CouponMemberUses.uses > 0,
                )
                .values(uses=CouponMemberUses.uses - 1)
                .execution_options(synchronize_session=False)
            )
    return len(rows)
