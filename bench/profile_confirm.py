"""Profile the purchase confirmation hot path in-process (pyinstrument), on PostgreSQL.

    .venv/bin/python bench/profile_confirm.py [--n 500] [--http]

Creates and drops its own database. With ``--http`` the requests go through the ASGI app
(FastAPI, validation, auth) with the test client; without it, straight to the service.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import time
import uuid

import psycopg

PG_ADMIN = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--http", action="store_true")
    ap.add_argument(
        "--asgi", action="store_true", help="through the ASGI app on an event loop (no TestClient)"
    )
    ap.add_argument("--no-profile", action="store_true", help="time only")
    ap.add_argument("--count-sql", action="store_true", help="count SQL statements per call")
    ap.add_argument(
        "--cprofile",
        metavar="N",
        type=int,
        default=0,
        help=(
            "profile CPU time (not wall time) with cProfile; print the N costliest functions"
            " (process time: with --http or --asgi the CPU of other threads counts too, and"
            " lands on whatever this thread was in, e.g. a poll)"
        ),
    )
    ap.add_argument("--cprofile-out", metavar="FILE", help="also save the cProfile stats to FILE")
    ap.add_argument(
        "--table-stats",
        action="store_true",
        help="print the rows each confirmation inserts and updates, per table, and its indexes",
    )
    ap.add_argument("--members", type=int, default=200, help="members seeded (receipts cycle)")
    ap.add_argument(
        "--challenges",
        choices=("demo", "none", "three"),
        default="demo",
        help="the demo programme's challenges, none, or three that every receipt counts for",
    )
    args = ap.parse_args()
    name = f"kopilka_prof_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rpartition("/")[0] + f"/{name}"
    os.environ["KOPILKA_DATABASE_URL"] = url
    os.environ["KOPILKA_LOG_LEVEL"] = "WARNING"
    try:
        try:  # only for the wall-time profile (not in the lock: a developer's tool)
            from pyinstrument import Profiler
        except ImportError:
            Profiler = None  # type: ignore[assignment,misc]

        from bench.purchases import last_sunday, seed
        from kopilka.core.db import get_db
        from kopilka.core.migrate import upgrade
        from kopilka.core.principal import Principal
        from kopilka.purchases import confirmation
        from kopilka.purchases.schemas import PurchaseIn

        upgrade(get_db().engine)
        cards, key = seed(url, args.members, dict(os.environ), args.challenges)
        till = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")

        def body(i: int) -> dict[str, object]:
            b: dict[str, object] = {
                "external_id": f"P-{i}",
                "store": "msk-01",
                "occurred_at": f"{last_sunday()}T10:00:00+03:00",
                "member": {"card": cards[i % len(cards)]},
                "lines": [
                    {"sku": "MILK", "quantity": "2", "unit_price": "89.90"},
                    {"sku": "COFFEE", "quantity": "1", "unit_price": "450.00"},
                ],
            }
            if i % 3 == 0:
                b["redeem"] = {"currency": "BONUS", "amount": "10.00"}
            return b

        if args.asgi:
            import asyncio

            import httpx

            from kopilka.main import create_app

            app = create_app()
            loop = asyncio.new_event_loop()
            h = {"Authorization": f"Bearer {key}"}
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            )

            def one(i: int) -> None:
                r = loop.run_until_complete(
                    client.post("/api/v1/purchases", json=body(i), headers=h)
                )
                assert r.status_code == 201, r.text
        elif args.http:
            from fastapi.testclient import TestClient

            from kopilka.main import create_app

            client = TestClient(create_app())
            h = {"Authorization": f"Bearer {key}"}

            def one(i: int) -> None:
                r = client.post("/api/v1/purchases", json=body(i), headers=h)
                assert r.status_code == 201, r.text
        else:
            db = get_db()

            def one(i: int) -> None:
                with db.session() as s:
                    confirmation.confirm(s, PurchaseIn.model_validate(body(i)), till)
                    s.commit()

        for i in range(50):
            one(-i - 1)
        statements = [0]
        if args.count_sql:
            from sqlalchemy import event

            seen: dict[str, int] = {}

            @event.listens_for(get_db().engine, "before_cursor_execute")
            def _count(_c: object, _cur: object, statement: str, *_: object) -> None:
                statements[0] += 1
                head = " ".join(statement.split())[:90]
                seen[head] = seen.get(head, 0) + 1

        before = table_stats(url) if args.table_stats else {}
        if Profiler is None and not args.no_profile and not args.cprofile:
            raise SystemExit("the wall-time profile needs pyinstrument (pip install pyinstrument)")
        prof = Profiler(interval=0.0005) if Profiler is not None else None
        cprof = cProfile.Profile(time.process_time) if args.cprofile else None
        if cprof is not None:
            cprof.enable()
        elif prof is not None and not args.no_profile:
            prof.start()
        t = time.perf_counter()
        cpu = time.process_time()
        pg_cpu = backends_cpu(name)
        for i in range(args.n):
            one(i)
        dt = time.perf_counter() - t
        cpu = time.process_time() - cpu
        pg_cpu = backends_cpu(name, pg_cpu)
        print(f"CPU time of this process: {cpu / args.n * 1000:.2f} ms per confirmation")
        print(
            f"CPU time of its PostgreSQL backends: {pg_cpu / args.n * 1000:.2f} ms per confirmation"
        )
        if args.count_sql:
            print(f"{statements[0] / args.n:.1f} SQL statements per confirmation")
            for head, n in sorted(seen.items(), key=lambda x: -x[1])[:25]:
                print(f"{n / args.n:6.2f}  {head}")
        if cprof is not None:
            cprof.disable()
            stats = pstats.Stats(cprof)
            if args.cprofile_out:
                stats.dump_stats(args.cprofile_out)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
            stats.sort_stats("tottime").print_stats(args.cprofile)
        elif prof is not None and not args.no_profile:
            prof.stop()
            print(
                prof.output_text(
                    unicode=True, color=False, show_all=bool(os.environ.get("SHOW_ALL"))
                )
            )
        if args.table_stats:
            get_db().dispose()  # the backends flush their statistics as they exit
            print_table_stats(url, before, args.n)
        print(f"{args.n} confirmations in {dt:.2f} s: {dt / args.n * 1000:.2f} ms each")
    finally:
        from kopilka.core.db import get_db

        get_db().dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backends_cpu(database: str, since: float = 0.0) -> float:
    """Seconds of CPU used so far by the PostgreSQL backends serving ``database`` (read
    from /proc: the server runs on this machine), minus ``since``."""
    from bench.purchases import proc_cpu

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        pids = [
            r[0]
            for r in c.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchall()
        ]
    stats = (proc_cpu(pid) for pid in pids)
    return sum(stat[2] for stat in stats if stat is not None) - since


def table_stats(url: str) -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated (of which HOT) per table so far (the statistics collector's)."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT pg_stat_force_next_flush()")
        rows = c.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def print_table_stats(url: str, before: dict[str, tuple[int, int, int]], n: int) -> None:
    time.sleep(0.5)
    after = table_stats(url)
    with psycopg.connect(url, autocommit=True) as c:
        idx = dict(
            c.execute(
                "SELECT tablename, count(*) FROM pg_indexes WHERE schemaname = 'public'"
                " GROUP BY tablename"
            ).fetchall()
        )
        fks = dict(
            c.execute(
                "SELECT conrelid::regclass::text, count(*) FROM pg_constraint"
                " WHERE contype = 'f' GROUP BY 1"
            ).fetchall()
        )
    print(f"{'table':32} {'ins':>6} {'upd':>6} {'hot':>6} {'indexes':>7} {'fks':>4}")
    for name in sorted(after):
        b = before.get(name, (0, 0, 0))
        ins, upd, hot = ((a - x) / n for a, x in zip(after[name], b, strict=True))
        if ins or upd:
            print(
                f"{name:32} {ins:6.2f} {upd:6.2f} {hot:6.2f} {idx.get(name, 0):7d}"
                f" {fks.get(name, 0):4d}"
            )


if __name__ == "__main__":
    main()
