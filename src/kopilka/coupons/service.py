"""Coupons: pools, codes, and their use on receipts.

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

import base64
import csv
import datetime as dt
import io
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.audit.service import record as audit
from kopilka.core import pagination
from kopilka.core.db import Database, get_db, now
from kopilka.core.errors import (
    Problem,
    field_error,
    validation_errors,
    validation_problem,
)
from kopilka.core.money import ZERO, fmt, plain
from kopilka.coupons import codes as codegen
from kopilka.coupons import rewards, throttle
from kopilka.coupons.models import Coupon, CouponMemberUses, CouponPool, CouponUse
from kopilka.coupons.schemas import ImportIn, PoolIn, PoolPatch
from kopilka.members.models import Member
from kopilka.program.service import current_program
from kopilka.rules.engine import ReceiptContext

log = structlog.get_logger("kopilka.coupons")

# A pool may fill at most this share of its pattern's space: a guess then hits a code
# with a probability of at most 1/SPARSITY, and random codes rarely collide.
SPARSITY = 10_000
GENERATE_CHUNK = 50_000
INSERT_CHUNK = 1_000
# generations the worker has still to do
PENDING = ("queued", "running")
# a pool whose generation wrote nothing for this long may be deleted
STALE_AFTER = dt.timedelta(seconds=120)

FAILURE_REASONS = frozenset({"coupon_invalid"})


# ---------------------------------------------------------------------------- pools


def _pattern(pool: CouponPool) -> codegen.Pattern:
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
    if _busy(pool):
        raise Problem(409, "coupon_generation_running", "codes are being generated")
    before = pool_json(pool)
    session.execute(delete(CouponMemberUses).where(CouponMemberUses.pool_id == pool.id))
    session.execute(delete(Coupon).where(Coupon.pool_id == pool.id))
    session.delete(pool)
    session.flush()
    audit(session, actor, "coupon_pool.delete", "coupon_pool", str(pool_id), before=before)


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


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def pool_json(pool: CouponPool) -> dict[str, Any]:
    pattern = _pattern(pool)
    return {
        "id": str(pool.id),
        "name": pool.name,
        "description": pool.description,
        "status": pool.status,
        "reward": reward_json(pool),
        "valid_from": _iso(pool.valid_from),
        "valid_until": _iso(pool.valid_until),
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
            "started_at": _iso(pool.generation_started_at),
            "finished_at": _iso(pool.generation_finished_at),
        },
        "created_at": _iso(pool.created_at),
        "updated_at": _iso(pool.updated_at),
    }


# ---------------------------------------------------------------------------- writing codes


def _room(pool: CouponPool) -> int:
    """How many more codes the pool's pattern may hold (see ``SPARSITY``)."""
    return max(0, _pattern(pool).space // SPARSITY - pool.code_count)


def _check_room(pool: CouponPool, count: int, field_name: str = "count") -> None:
    room = _room(pool)
    if count > room:
        raise Problem(
            422,
            "coupon_pattern_exhausted",
            f"the pattern {_pattern(pool).example()} leaves room for {room} more codes; "
            "use more or longer groups",
            errors=[field_error(field_name, f"at most {room}", "too_many")],
            extra={"room": room},
        )


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert codes, skipping any whose lookup key exists; the keys inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    done: set[str] = set()
    for i in range(0, len(rows), INSERT_CHUNK):
        stmt = (
            insert(Coupon)
            .values(rows[i : i + INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=["lookup"])
            .returning(Coupon.lookup)
        )
        done.update(session.execute(stmt).scalars())
    return done


_COPY_SQL = "COPY coupon_codes_new (code, lookup) FROM STDIN"
_MOVE_SQL = """
INSERT INTO coupons (pool_id, code, lookup, source, uses, created_at)
SELECT CAST(:pool AS uuid), code, lookup, 'generated', 0, CAST(:at AS timestamptz)
FROM coupon_codes_new
ON CONFLICT (lookup) DO NOTHING
"""


def _bulk_insert_pg(session: Session, pool_id: uuid.UUID, pairs: list[tuple[str, str]]) -> int:
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING: the fastest
    way to write many rows of which a few may collide. Returns how many were new."""
    conn = session.connection()
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS coupon_codes_new (code text, lookup text) "
        "ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql("TRUNCATE coupon_codes_new")
    raw: Any = conn.connection.driver_connection
    payload = "".join(f"{c}\t{k}\n" for c, k in pairs).encode()
    with raw.cursor() as cur, cur.copy(_COPY_SQL) as copy:
        copy.write(payload)
    result = conn.execute(text(_MOVE_SQL), {"pool": str(pool_id), "at": now()})
    return int(result.rowcount)


def _add_generated(session: Session, pool: CouponPool, count: int) -> int:
    """Write ``count`` new codes for the pool (topping up for collisions), not committed."""
    pattern = _pattern(pool)
    pg = session.get_bind().dialect.name == "postgresql"
    made = 0
    rounds = 0
    while made < count:
        rounds += 1
        if rounds > 20:  # pragma: no cover - the pattern is kept sparse (SPARSITY)
            raise RuntimeError("could not find unused codes; the pattern is too full")
        want = count - made
        pairs = codegen.generate(pattern, want)
        if pg:
            made += _bulk_insert_pg(session, pool.id, pairs)
        else:
            at = now()
            rows = [
                {
                    "pool_id": pool.id,
                    "code": c,
                    "lookup": k,
                    "source": "generated",
                    "uses": 0,
                    "created_at": at,
                }
                for c, k in pairs
            ]
            made += len(_insert_rows(session, rows))
    session.execute(
        update(CouponPool)
        .where(CouponPool.id == pool.id)
        .values(code_count=CouponPool.code_count + made)
        .execution_options(synchronize_session=False)
    )
    pool.code_count += made
    return made


def generate_now(session: Session, pool_id: uuid.UUID, count: int, actor: str) -> CouponPool:
    """Generate ``count`` codes inside the caller's transaction (small pools)."""
    pool = get_pool(session, pool_id, lock=True)
    _check_generation_free(pool)
    _check_room(pool, count)
    made = _add_generated(session, pool, count)
    at = now()
    pool.generation_status = "done"
    pool.generation_requested = count
    pool.generation_done = made
    pool.generation_error = None
    pool.generation_started_at = pool.generation_finished_at = pool.generation_heartbeat_at = at
    session.flush()
    audit(
        session,
        actor,
        "coupon_pool.generate",
        "coupon_pool",
        str(pool.id),
        details={"count": count},
    )
    return pool


def _busy(pool: CouponPool) -> bool:
    """A worker is writing the pool's codes right now (its heartbeat is fresh)."""
    beat = pool.generation_heartbeat_at
    return pool.generation_status == "running" and beat is not None and now() - beat <= STALE_AFTER


def _check_generation_free(pool: CouponPool) -> None:
    if pool.generation_status in PENDING:
        raise Problem(
            409,
            "coupon_generation_running",
            f"{pool.generation_done} of {pool.generation_requested} codes generated so far; "
            "wait for the job to finish",
        )


def start_generation(session: Session, pool_id: uuid.UUID, count: int, actor: str) -> CouponPool:
    """Queue a generation of ``count`` codes for the worker (not committed): the job
    ``coupons.generate`` makes them after the commit."""
    pool = get_pool(session, pool_id, lock=True)
    _check_generation_free(pool)
    _check_room(pool, count)
    pool.generation_status = "queued"
    pool.generation_requested = count
    pool.generation_done = 0
    pool.generation_error = None
    pool.generation_started_at = now()
    pool.generation_heartbeat_at = pool.generation_finished_at = None
    session.flush()
    audit(
        session,
        actor,
        "coupon_pool.generate",
        "coupon_pool",
        str(pool.id),
        details={"count": count, "background": True},
    )
    return pool


def generation_step(session: Session, pool_id: uuid.UUID, chunk: int | None = None) -> int:
    """Make the next chunk of a queued generation and commit it with the progress, so a
    worker that dies loses at most one chunk and the next run resumes where it stopped.
    Returns how many codes were made (0: nothing left to do)."""
    pool = get_pool(session, pool_id, lock=True)
    if pool.generation_status not in PENDING:
        session.commit()
        return 0
    left = pool.generation_requested - pool.generation_done
    made = _add_generated(session, pool, min(left, chunk or GENERATE_CHUNK)) if left > 0 else 0
    pool.generation_done += made
    pool.generation_status = "running"
    pool.generation_heartbeat_at = now()
    if pool.generation_done >= pool.generation_requested:
        pool.generation_status = "done"
        pool.generation_finished_at = pool.generation_heartbeat_at
        log.info("coupon_generation_done", pool_id=str(pool_id), codes=pool.generation_done)
    session.commit()
    return made


def _fail_generation(session: Session, pool_id: uuid.UUID, exc: Exception) -> None:
    log.error("coupon_generation_failed", pool_id=str(pool_id), error=repr(exc))
    session.rollback()
    pool = session.get(CouponPool, pool_id, with_for_update=True, populate_existing=True)
    if pool is not None:
        pool.generation_status = "failed"
        pool.generation_error = f"{type(exc).__name__}: {exc}"[:500]
        pool.generation_finished_at = now()
    session.commit()


def generate_queued(
    session: Session, budget_seconds: float = 240.0, chunk: int | None = None
) -> int:
    """The worker's job: work through queued generations, oldest first, chunk by chunk,
    for at most ``budget_seconds`` (the next run goes on). Returns the codes made."""
    deadline = time.monotonic() + budget_seconds
    made = 0
    while time.monotonic() < deadline:
        pool_id = session.execute(
            select(CouponPool.id)
            .where(CouponPool.generation_status.in_(PENDING))
            .order_by(CouponPool.generation_started_at, CouponPool.id)
            .limit(1)
        ).scalar_one_or_none()
        session.commit()
        if pool_id is None:
            break
        try:
            made += generation_step(session, pool_id, chunk)
        except Exception as exc:
            _fail_generation(session, pool_id, exc)
    return made


def run_generation(
    pool_id: uuid.UUID, db: Database | None = None, chunk: int | None = None
) -> None:
    """Run one queued generation to its end in this process (the benchmark, scripts)."""
    db = db or get_db()
    with db.session() as session:
        try:
            while generation_step(session, pool_id, chunk):
                pass
        except Exception as exc:
            _fail_generation(session, pool_id, exc)


def issue_personal(
    session: Session, pool_id: uuid.UUID, member_ids: Sequence[uuid.UUID], actor: str
) -> list[dict[str, str]]:
    """One new personal code of the pool for each member; 404 for an unknown member."""
    pool = get_pool(session, pool_id, lock=True)
    _check_room(pool, len(member_ids), "member_ids")
    found = set(session.execute(select(Member.id).where(Member.id.in_(set(member_ids)))).scalars())
    missing = [i for i, m in enumerate(member_ids) if m not in found]
    if missing:
        raise Problem(
            404,
            "member_not_found",
            "no member with these ids",
            errors=[field_error(f"member_ids[{i}]", "no such member", "unknown") for i in missing],
        )
    pattern = _pattern(pool)
    todo = list(member_ids)
    out: list[dict[str, str]] = []
    while todo:
        at = now()
        pairs = codegen.generate(pattern, len(todo))
        rows = [
            {
                "pool_id": pool.id,
                "code": c,
                "lookup": k,
                "source": "personal",
                "member_id": m,
                "uses": 0,
                "created_at": at,
            }
            for (c, k), m in zip(pairs, todo, strict=True)
        ]
        done = _insert_rows(session, rows)
        retry: list[uuid.UUID] = []
        for (code, key), m in zip(pairs, todo, strict=True):
            if key in done:
                out.append({"member_id": str(m), "code": code})
            else:
                retry.append(m)
        todo = retry
    pool.code_count += len(member_ids)
    session.flush()
    audit(
        session,
        actor,
        "coupon_pool.issue_personal",
        "coupon_pool",
        str(pool.id),
        details={"members": len(member_ids)},
    )
    return out


def parse_csv(data: bytes) -> ImportIn:
    """A CSV of codes: a header with ``code`` (and optionally ``member_id``), or one code
    per line with no header. 422 naming the line for anything unreadable."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise validation_problem([field_error("body", "the CSV must be UTF-8")]) from exc
    try:
        dialect: Any = csv.Sniffer().sniff(content[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # newline="": the reader sees the file's own line ends (a lone \r is one too), as the
    # csv module wants; what it still cannot read (a field beyond its limit) is the
    # caller's 422, naming the line
    reader = csv.reader(io.StringIO(content, newline=""), dialect)
    try:
        rows = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise validation_problem(
            [field_error(f"line {reader.line_num}", f"not readable as CSV: {exc}", "csv")]
        ) from exc
    if not rows:
        raise validation_problem([field_error("body", "no codes in the file", "empty")])
    header = [c.strip().lower() for c in rows[0]]
    code_col, member_col, start = 0, None, 0
    if "code" in header:
        code_col = header.index("code")
        member_col = header.index("member_id") if "member_id" in header else None
        start = 1
    codes: list[str] = []
    members: list[uuid.UUID | None] = []
    errors = []
    for n, row in enumerate(rows[start:], start=start + 1):
        code = row[code_col].strip() if code_col < len(row) else ""
        if not code:
            errors.append(field_error(f"line {n}.code", "no code on this line", "missing"))
        member: uuid.UUID | None = None
        if member_col is not None and member_col < len(row) and row[member_col].strip():
            try:
                member = uuid.UUID(row[member_col].strip())
            except ValueError:
                errors.append(field_error(f"line {n}.member_id", "not a member id", "invalid"))
        codes.append(code)
        members.append(member)
    if errors:
        raise validation_problem(errors[:100])
    try:
        return ImportIn(codes=codes, member_ids=members if member_col is not None else None)
    except ValueError as exc:
        raise validation_problem([field_error("body", str(exc).splitlines()[0])]) from exc


def import_codes(
    session: Session, pool_id: uuid.UUID, body: ImportIn, actor: str
) -> dict[str, Any]:
    """Add codes made elsewhere, all or none: 422 naming each unreadable or repeated code,
    409 ``coupon_code_exists`` naming each code some pool already has."""
    pool = get_pool(session, pool_id, lock=True)
    errors = []
    seen: dict[str, int] = {}
    rows = []
    members = body.member_ids or [None] * len(body.codes)
    at = now()
    for i, (raw, member) in enumerate(zip(body.codes, members, strict=True)):
        key = codegen.lookup_key(raw)
        if key is None:
            errors.append(
                field_error(f"codes[{i}]", "3 to 40 letters and digits (dashes and spaces ignored)")
            )
            continue
        if key in seen:
            errors.append(
                field_error(f"codes[{i}]", f"the same code as codes[{seen[key]}]", "duplicate")
            )
            continue
        seen[key] = i
        rows.append(
            {
                "pool_id": pool.id,
                "code": codegen.display_form(raw),
                "lookup": key,
                "source": "personal" if member else "imported",
                "member_id": member,
                "uses": 0,
                "created_at": at,
            }
        )
    if errors:
        raise validation_problem(errors[:100], f"{len(errors)} codes are not valid")
    wanted = {m for m in members if m is not None}
    if wanted:
        found = set(session.execute(select(Member.id).where(Member.id.in_(wanted))).scalars())
        unknown = [
            field_error(f"member_ids[{i}]", "no such member", "unknown")
            for i, m in enumerate(members)
            if m is not None and m not in found
        ]
        if unknown:
            raise Problem(404, "member_not_found", "no member with these ids", errors=unknown[:100])
    done = _insert_rows(session, rows)
    if len(done) != len(rows):
        clash = [
            field_error(f"codes[{i}]", "this code exists already", "exists")
            for key, i in seen.items()
            if key not in done
        ]
        raise Problem(
            409,
            "coupon_code_exists",
            f"{len(clash)} of the codes exist already (codes are unique across all pools)",
            errors=clash[:100],
        )
    pool.code_count += len(rows)
    session.flush()
    audit(
        session,
        actor,
        "coupon_pool.import",
        "coupon_pool",
        str(pool.id),
        details={"count": len(rows)},
    )
    return {"imported": len(rows), "pool": pool_json(pool)}


# ---------------------------------------------------------------------------- reading codes


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
        "valid_from": _iso(pool.valid_from),
        "valid_until": _iso(pool.valid_until),
        "created_at": _iso(coupon.created_at),
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
                "used_at": _iso(u.used_at),
                "released_at": _iso(u.released_at),
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
                        _iso(c.created_at),
                    ]
                )
        yield buf.getvalue().encode()
        if after is None:
            return


# ---------------------------------------------------------------------------- receipts


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


def pool_stats(session: Session, pool_id: uuid.UUID) -> dict[str, int]:
    """Uses taken and given back, for the console."""
    taken, released = session.execute(
        select(
            func.count(CouponUse.id),
            func.count(CouponUse.released_at),
        ).where(CouponUse.pool_id == pool_id)
    ).one()
    return {"uses": int(taken) - int(released), "released": int(released)}
