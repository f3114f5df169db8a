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
    ap.add_argument("--members", type=int, default=200, help="members seeded (receipts cycle)")
    args = ap.parse_args()
    name = f"kopilka_prof_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rpartition("/")[0] + f"/{name}"
    os.environ["KOPILKA_DATABASE_URL"] = url
    os.environ["KOPILKA_LOG_LEVEL"] = "WARNING"
    try:
        from pyinstrument import Profiler

        from bench.purchases import seed
        from kopilka.apikeys.service import Principal
        from kopilka.core.db import get_db
        from kopilka.core.migrate import upgrade
        from kopilka.purchases import service
        from kopilka.purchases.schemas import PurchaseIn

        upgrade(get_db().engine)
        cards, key = seed(url, args.members, dict(os.environ))
        till = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")

        def body(i: int) -> dict[str, object]:
            b: dict[str, object] = {
                "external_id": f"P-{i}",
                "store": "msk-01",
                "occurred_at": "2026-11-22T10:00:00+03:00",
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
                    service.confirm(s, PurchaseIn.model_validate(body(i)), till)
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

        prof = Profiler(interval=0.0005)
        cprof = cProfile.Profile(time.process_time) if args.cprofile else None
        if cprof is not None:
            cprof.enable()
        elif not args.no_profile:
            prof.start()
        t = time.perf_counter()
        cpu = time.process_time()
        for i in range(args.n):
            one(i)
        dt = time.perf_counter() - t
        cpu = time.process_time() - cpu
        print(f"CPU time of this process: {cpu / args.n * 1000:.2f} ms per confirmation")
        if args.count_sql:
            print(f"{statements[0] / args.n:.1f} SQL statements per confirmation")
            for head, n in sorted(seen.items(), key=lambda x: -x[1])[:25]:
                print(f"{n / args.n:6.2f}  {head}")
        if cprof is not None:
            cprof.disable()
            stats = pstats.Stats(cprof)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
            stats.sort_stats("tottime").print_stats(args.cprofile)
        elif not args.no_profile:
            prof.stop()
            print(
                prof.output_text(
                    unicode=True, color=False, show_all=bool(os.environ.get("SHOW_ALL"))
                )
            )
        print(f"{args.n} confirmations in {dt:.2f} s: {dt / args.n * 1000:.2f} ms each")
    finally:
        from kopilka.core.db import get_db

        get_db().dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
