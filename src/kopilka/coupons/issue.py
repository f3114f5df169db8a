"""Writing a pool's codes: generated at once or by the worker a chunk at a time, issued
to named members, or imported from a file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.audit.service import record as audit
from kopilka.core.db import Database, get_db, now
from kopilka.core.errors import (
    Problem,
    field_error,
    validation_problem,
)
from kopilka.coupons import codes as codegen
from kopilka.coupons.models import Coupon, CouponPool
from kopilka.coupons.pools import (
    PENDING,
    code_pattern,
    get_pool,
    pool_json,
)
from kopilka.coupons.queries import find_code, pools_by_ref
from kopilka.coupons.schemas import ImportIn
from kopilka.members.queries import existing_ids

log = structlog.get_logger("kopilka.coupons")

# A pool may fill at most this share of its pattern's space: a guess then hits a code
# with a probability of at most 1/SPARSITY, and random codes rarely collide.
SPARSITY = 10_000
GENERATE_CHUNK = 50_000
INSERT_CHUNK = 1_000


def _room(pool: CouponPool) -> int:
    """How many more codes the pool's pattern may hold (see ``SPARSITY``)."""
    return max(0, code_pattern(pool).space // SPARSITY - pool.code_count)


def _check_room(pool: CouponPool, count: int, field_name: str = "count") -> None:
    room = _room(pool)
    if count > room:
        raise Problem(
            422,
            "coupon_pattern_exhausted",
            f"the pattern {code_pattern(pool).example()} leaves room for {room} more codes; "
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
    pattern = code_pattern(pool)
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
    found = existing_ids(session, set(member_ids))
    missing = [i for i, m in enumerate(member_ids) if m not in found]
    if missing:
        raise Problem(
            404,
            "member_not_found",
            "no member with these ids",
            errors=[field_error(f"member_ids[{i}]", "no such member", "unknown") for i in missing],
        )
    pattern = code_pattern(pool)
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
        found = existing_ids(session, wanted)
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


# ---------------------------------------------------------------------------- one code, named


def _usable_pool(session: Session, ref: str, at: dt.datetime) -> tuple[Any, str | None]:
    """The coupon pool a programme names (by id or by name: an event rule's or a referral's
    reward) and why it cannot issue a code now, if it cannot."""
    pools = pools_by_ref(session, ref)
    if not pools:
        return None, "coupon_pool_not_found"
    if len(pools) > 1:
        return None, "coupon_pool_ambiguous"
    pool = pools[0]
    if pool.status != "active":
        return pool, "coupon_pool_paused"
    if pool.valid_until is not None and at >= pool.valid_until:
        return pool, "coupon_pool_expired"
    return pool, None


def issue_to_member(
    session: Session, ref: str, member_id: uuid.UUID, actor: str
) -> tuple[str | None, str | None]:
    """A personal code of the pool ``ref`` names for the member: ``(code, None)``, or
    ``(None, reason)`` when the pool cannot issue one (nothing is written then):
    ``coupon_pool_not_found``, ``_ambiguous``, ``_paused``, ``_expired``, or the code of
    the problem that refused it (e.g. the pool's code pattern is full)."""
    pool, reason = _usable_pool(session, ref, now())
    if reason is not None:
        return None, reason
    try:
        issued = issue_personal(session, pool.id, [member_id], actor)
    except Problem as exc:  # refused before writing (e.g. the code pattern is full)
        return None, exc.code
    return issued[0]["code"], None


# --- challenges ---


def void_if_unused(session: Session, code: str) -> bool:
    """Take back a personal code given as a reward that was then revoked (a challenge's
    completion undone by a return): when it has not been used and its pool limits its
    uses, its uses are set to the limit, so no till accepts it any more. False when it was
    used already or cannot be limited (a pool of codes without a limit)."""
    found = find_code(session, code)
    if found is None:
        return False
    coupon, pool = found
    if coupon.uses > 0 or pool.uses_per_code is None:
        return False
    coupon.uses = pool.uses_per_code
    session.flush()
    return True
