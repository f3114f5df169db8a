"""Benchmark: generating 1,000,000 coupon codes for one pool on PostgreSQL.

    .venv/bin/python bench/coupons_generate.py [--count 1000000] [--chunk 50000]

It creates its own PostgreSQL database (on KOPILKA_BENCH_PG_URL, default
postgresql://postgres@127.0.0.1:5432/postgres), migrates it, applies the demo programme,
creates a pool (``SPRING-XXXX-XXXX``), queues the generation as
``POST /coupon-pools/{id}/generate`` does, and runs it with the worker job's steps: chunks
of COPY into a temporary table, then
``INSERT … ON CONFLICT (lookup) DO NOTHING``, topping up for collisions, progress
committed after each chunk. Then it checks that the pool holds exactly ``count`` codes,
all distinct, prints codes/s, and writes the figures as JSON to bench/results/. The
acceptance bar is 1,000,000 codes in under 60 s; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def db_url(name: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{name}"


def run(count: int, chunk: int) -> dict[str, object]:
    from sqlalchemy import func, select

    from kopilka.core.db import Database, make_engine
    from kopilka.core.migrate import upgrade
    from kopilka.coupons import issue, pools
    from kopilka.coupons.models import Coupon
    from kopilka.coupons.schemas import PoolIn
    from kopilka.demo.seed import demo_program_text
    from kopilka.program.service import apply_program, parse_program

    name = f"kopilka_bench_coupons_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url=db_url(name))
    try:
        upgrade(engine)
        db = Database(engine)
        with db.session() as s:
            apply_program(s, parse_program(demo_program_text()), actor="bench")
            pool = pools.create_pool(
                s,
                PoolIn.model_validate(
                    {
                        "name": "Bench",
                        "reward": {"kind": "percent", "value": "10"},
                        "code_pattern": {"prefix": "SPRING", "groups": 2, "group_length": 4},
                    }
                ),
                "bench",
            )
            issue.start_generation(s, pool.id, count, "bench")
            s.commit()
        started = time.perf_counter()
        issue.run_generation(pool.id, db, chunk=chunk)
        seconds = time.perf_counter() - started
        with db.session() as s:
            got = pools.get_pool(s, pool.id)
            rows, distinct = s.execute(
                select(func.count(Coupon.id), func.count(func.distinct(Coupon.lookup))).where(
                    Coupon.pool_id == pool.id
                )
            ).one()
            status, done, code_count = got.generation_status, got.generation_done, got.code_count
        db.dispose()
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "benchmark": "coupons_generate",
        "count": count,
        "chunk": chunk,
        "seconds": round(seconds, 2),
        "codes_per_second": round(count / seconds),
        "status": status,
        "generation_done": done,
        "code_count": code_count,
        "rows": rows,
        "distinct_codes": distinct,
        "ok": status == "done" and rows == distinct == code_count == count,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    args = parser.parse_args()
    os.environ.setdefault("KOPILKA_LOG_LEVEL", "WARNING")
    result = run(args.count, args.chunk)
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"coupons-generate-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    if not result["ok"]:
        sys.exit("the pool does not hold exactly the codes asked for")


if __name__ == "__main__":
    main()
