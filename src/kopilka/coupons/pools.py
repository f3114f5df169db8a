"""Coupon pools: created, changed, deleted and listed, their JSON, and their counts.

A pool holds the reward, the validity, the conditions and the code pattern that its codes
share; its codes are written by ``issue`` and read by ``lookup``.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kopilka.audit.service import record as audit
from kopilka.core.db import now
from kopilka.core.errors import (
    Problem,
    field_error,
    validation_errors,
    validation_problem,
)
from kopilka.core.money import fmt, plain
from kopilka.coupons import codes as codegen
from kopilka.coupons.models import Coupon, CouponMemberUses, CouponPool, CouponUse
from kopilka.coupons.schemas import PoolIn, PoolPatch
from kopilka.program.service import current_program

# generations the worker has still to do
PENDING = ("queued", "running")
# a pool whose generation wrote nothing for this long may be deleted
STALE_AFTER = dt.timedelta(seconds=120)


def code_pattern(pool: CouponPool) -> codegen.Pattern:
    return codegen.Pattern(pool.prefix, pool.groups, pool.group_length)


def _check_references(session: Session, body: PoolIn) -> None:
    """Stores and currencies must exist in the programme in force."""
    spec = current_program(session).spec
    errors = []
    known = {s.code for s in spec.stores}
    for i, s in enumerate(body.stores):
        if s not in known:
            errors.append(
                field_error(f"stores[{i}]", f"no store {s!r} in the programme", "unknown")
            )
    cur = body.reward.currency
    if cur is not None:
        spec_cur = spec.currency(cur)
        if spec_cur is None:
            errors.append(field_error("reward.currency", f"no currency {cur!r}", "unknown"))
        elif body.reward.kind == "points" and body.reward.value is not None:
            q = Decimal(1).scaleb(-spec_cur.precision)
            if body.reward.value != body.reward.value.quantize(q):
                errors.append(
                    field_error(
                        "reward.value",
                        f"{cur} has {spec_cur.precision} decimal places",
                        "precision",
                    )
                )
    if errors:
        raise validation_problem(errors)


def _apply_fields(pool: CouponPool, body: PoolIn) -> None:
    r = body.reward
    pool.name = body.name
    pool.description = body.description
    pool.status = body.status
    pool.reward_kind = r.kind
    pool.reward_value = r.value
    pool.reward_currency = r.currency
    pool.max_discount = r.max_discount
    pool.skus = sorted(set(r.skus))
    pool.categories = sorted(set(r.categories))
    pool.free_sku = r.free_sku
    pool.free_quantity = (r.free_quantity or Decimal(1)) if r.kind == "free_product" else None
    pool.valid_from = body.valid_from
    pool.valid_until = body.valid_until
    pool.min_receipt = body.min_receipt
    pool.stores = sorted(set(body.stores))
    pool.channels = sorted(set(body.channels))
    pool.uses_per_code = body.uses_per_code
    pool.uses_per_member = body.uses_per_member
    pool.stackable = body.stackable
    pool.prefix = body.code_pattern.prefix
    pool.groups = body.code_pattern.groups
    pool.group_length = body.code_pattern.group_length


def create_pool(session: Session, body: PoolIn, actor: str) -> CouponPool:
    """A new pool (not committed); 422 naming the field for unknown stores or currencies."""
    _check_references(session, body)
    pool = CouponPool(created_by=actor, code_count=0, generation_status="idle")
    _apply_fields(pool, body)
    session.add(pool)
    session.flush()
    audit(session, actor, "coupon_pool.create", "coupon_pool", str(pool.id), after=pool_json(pool))
    return pool


def get_pool(session: Session, pool_id: uuid.UUID, lock: bool = False) -> CouponPool:
    q = select(CouponPool).where(CouponPool.id == pool_id)
    if lock:
        q = q.with_for_update()
    pool = session.execute(q.execution_options(populate_existing=True)).scalar_one_or_none()
    if pool is None:
        raise Problem(404, "coupon_pool_not_found", f"no coupon pool {pool_id}")
    return pool


def pool_in(pool: CouponPool) -> dict[str, Any]:
    """The pool as the fields of a create request (the base a patch is applied to)."""
    reward: dict[str, Any] = {"kind": pool.reward_kind}
    if pool.reward_value is not None:
        reward["value"] = pool.reward_value
    if pool.reward_currency is not None:
        reward["currency"] = pool.reward_currency
    if pool.max_discount is not None:
        reward["max_discount"] = pool.max_discount
    if pool.skus:
        reward["skus"] = list(pool.skus)
    if pool.categories:
        reward["categories"] = list(pool.categories)
    if pool.free_sku is not None:
        reward["free_sku"] = pool.free_sku
        reward["free_quantity"] = pool.free_quantity
    return {
        "name": pool.name,
        "description": pool.description,
        "status": pool.status,
        "reward": reward,
        "valid_from": pool.valid_from,
        "valid_until": pool.valid_until,
        "min_receipt": pool.min_receipt,
        "stores": list(pool.stores),
        "channels": list(pool.channels),
        "uses_per_code": pool.uses_per_code,
        "uses_per_member": pool.uses_per_member,
        "stackable": pool.stackable,
        "code_pattern": {
            "prefix": pool.prefix,
            "groups": pool.groups,
            "group_length": pool.group_length,
        },
    }


def update_pool(session: Session, pool_id: uuid.UUID, patch: PoolPatch, actor: str) -> CouponPool:
    """Change some fields; the resulting pool is validated as a whole (422 naming the
    field). Changes apply to every code of the pool from now on."""
    pool = get_pool(session, pool_id, lock=True)
    before = pool_json(pool)
    merged = {**pool_in(pool), **patch.model_dump(exclude_unset=True)}
    try:
        body = PoolIn.model_validate(merged)
    except ValidationError as exc:
        raise validation_problem(validation_errors(exc, root="body")) from exc
    _check_references(session, body)
    _apply_fields(pool, body)
    pool.updated_at = now()
    session.flush()
    audit(
        session,
        actor,
        "coupon_pool.update",
        "coupon_pool",
        str(pool.id),
        before=before,
        after=pool_json(pool),
    )
    return pool


def delete_pool(session: Session, pool_id: uuid.UUID, actor: str) -> None:
    """Delete a pool and its codes, if none was ever used (else 409: pause it instead)."""
    pool = get_pool(session, pool_id, lock=True)
    used = session.execute(
        select(CouponUse.id).where(CouponUse.pool_id == pool.id).limit(1)
    ).first()
    if used is not None:
        raise Problem(
            409,
            "coupon_pool_in_use",
            "codes of this pool were used on receipts; pause the pool instead",
        )
    if generation_running(pool):
        raise Problem(409, "coupon_generation_running", "codes are being generated")
    before = pool_json(pool)
    session.execute(delete(CouponMemberUses).where(CouponMemberUses.pool_id == pool.id))
    session.execute(delete(Coupon).where(Coupon.pool_id == pool.id))
    session.delete(pool)
    session.flush()
    audit(session, actor, "coupon_pool.delete", "coupon_pool", str(pool_id), before=before)


def generation_running(pool: CouponPool) -> bool:
    """A worker is writing the pool's codes right now (its heartbeat is fresh)."""
    beat = pool.generation_heartbeat_at
    return pool.generation_status == "running" and beat is not None and now() - beat <= STALE_AFTER


def list_pools(
    session: Session, cursor: str | None = None, limit: int = 50
) -> tuple[list[CouponPool], str | None]:
    """Pools in creation order, a page at a time."""
    q = select(CouponPool).order_by(CouponPool.id).limit(limit + 1)
    if cursor:
        q = q.where(CouponPool.id > _decode_uuid(cursor))
    rows = list(session.execute(q).scalars())
    nxt = _encode_uuid(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], nxt


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def _decode_uuid(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise _bad_cursor() from exc


def _bad_cursor() -> Problem:
    return validation_problem(
        [{**field_error("cursor", "not a cursor from this API"), "in": "query"}]
    )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value, 2)


def _plain(value: Decimal | None) -> str | None:
    """A percent, factor, points or quantity with no trailing zeros: "10", "2.5"."""
    return None if value is None else plain(value)


def reward_json(pool: CouponPool) -> dict[str, Any]:
    kind = pool.reward_kind
    value = _money(pool.reward_value) if kind == "fixed" else _plain(pool.reward_value)
    return {
        "kind": kind,
        "value": value,
        "currency": pool.reward_currency,
        "max_discount": _money(pool.max_discount),
        "skus": list(pool.skus),
        "categories": list(pool.categories),
        "free_sku": pool.free_sku,
        "free_quantity": _plain(pool.free_quantity) if pool.free_sku else None,
    }


def iso_or_none(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def pool_json(pool: CouponPool) -> dict[str, Any]:
    pattern = code_pattern(pool)
    return {
        "id": str(pool.id),
        "name": pool.name,
        "description": pool.description,
        "status": pool.status,
        "reward": reward_json(pool),
        "valid_from": iso_or_none(pool.valid_from),
        "valid_until": iso_or_none(pool.valid_until),
        "min_receipt": _money(pool.min_receipt),
        "stores": list(pool.stores),
        "channels": list(pool.channels),
        "uses_per_code": pool.uses_per_code,
        "uses_per_member": pool.uses_per_member,
        "stackable": pool.stackable,
        "code_pattern": {
            "prefix": pool.prefix,
            "groups": pool.groups,
            "group_length": pool.group_length,
            "example": pattern.example(),
        },
        "code_count": pool.code_count,
        "generation": {
            "status": pool.generation_status,
            "requested": pool.generation_requested,
            "done": pool.generation_done,
            "error": pool.generation_error,
            "started_at": iso_or_none(pool.generation_started_at),
            "finished_at": iso_or_none(pool.generation_finished_at),
        },
        "created_at": iso_or_none(pool.created_at),
        "updated_at": iso_or_none(pool.updated_at),
    }


def pool_stats(session: Session, pool_id: uuid.UUID) -> dict[str, int]:
    """Uses taken and given back, for the console."""
    taken, released = session.execute(
        select(
            func.count(CouponUse.id),
            func.count(CouponUse.released_at),
        ).where(CouponUse.pool_id == pool_id)
    ).one()
    return {"uses": int(taken) - int(released), "released": int(released)}
