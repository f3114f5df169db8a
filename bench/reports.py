"""Benchmark of the dashboards: every report query over 10 million purchases on PostgreSQL.

    .venv/bin/python bench/reports.py [--purchases 10000000] [--members 1000000] [--keep]
    .venv/bin/python bench/reports.py --reuse kopilka_bench_reports_… [--full]

It creates its own PostgreSQL database (``KOPILKA_BENCH_PG_URL``, default the local server
as ``postgres``), migrates it, applies a programme with 20 stores, three channels, tiers
and a 10 % control group, and generates a year of history in SQL: members joining over
the year, receipts (70 % with a card), their earnings as ledger entries, postings and
lots, one in ten redeeming half of what it earned, and the expiry of every lot older
than 180 days. Then it times the full rollup, an incremental rollup after a few new
receipts, and each report (the queries behind each dashboard chart) over 30, 90 and 365
days, with and without filters: cold (the first call of a process, nothing decoded yet)
and warm (the median of three calls after it), and the slow reports' first call after an
incremental rollup. Figures are printed and written as JSON to bench/results/.

``--reuse NAME`` times a database a previous ``--keep`` left (migrating it first, so a
new migration is timed on 10 million receipts too); ``--full`` rebuilds its rollup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = 20
_STORES_YAML = "\n".join(f"  - {{code: st{i}, name: Store {i}}}" for i in range(STORES))
PROGRAM = (
    """
name: Bench
base_currency: RUB
timezone: Europe/Moscow
currencies:
  - {code: BONUS, name: Bonus, precision: 2, value: "1.00", pending_days: 0,
     expires_after_days: 180, redeem_max_share: "0.5"}
stores:
"""
    + _STORES_YAML
    + """
control_group_share: "0.1"
rules:
  - name: Base earn
    earn: {currency: BONUS, percent: "5"}
"""
)

# uuid7-like ids made in SQL from a moment and a salt (time-ordered, as the app's are).
U7 = """
CREATE OR REPLACE FUNCTION pg_temp.u7(ts timestamptz, salt text) RETURNS uuid AS $$
  SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(salt), 1, 3) || '8' || substr(md5(salt), 4, 15))::uuid
$$ LANGUAGE sql IMMUTABLE
"""


def step(label: str, conn: psycopg.Connection[Any], sql: str, **params: Any) -> float:
    """Run the statements of ``sql`` (separated by ``;`` at a line end) and commit. A
    ``%`` that is not a ``%(name)s`` placeholder is SQL's modulo."""
    t = time.perf_counter()
    for statement in re.split(r";\s*\n", sql):
        if statement.strip():
            text = re.sub(r"%(?!\()", "%%", statement) if params else statement
            conn.execute(text, params or None)
    conn.commit()
    took = time.perf_counter() - t
    print(f"  {label}: {took:.1f} s", flush=True)
    return took


def generate(url: str, members: int, purchases: int) -> dict[str, float]:
    times: dict[str, float] = {}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = now - dt.timedelta(days=365)
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute(U7)
        big = ("members", "purchases", "ledger_entries", "ledger_postings", "ledger_lots")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT LIKE 'pk_%%'",
            (list(big),),
        ).fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u','f')",
            (list(big),),
        ).fetchall()
        backing = {name for _, name, _ in constraints}
        indexes = [(n, d) for n, d in indexes if n not in backing]
        for table, name, _ in constraints:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        conn.commit()
        span = "interval '365 days'"
        times["members"] = step(
            f"{members:,} members",
            conn,
            f"""
            INSERT INTO members (id, card_number_enc, card_number_index, tier, status,
                                 referral_code, created_at, updated_at)
            SELECT pg_temp.u7(c, 'm' || i), 'bench', 'card' || i,
                   CASE WHEN i % 50 = 0 THEN 'gold' WHEN i % 10 = 0 THEN 'silver' END,
                   'active', 'R' || i, c, c
            FROM generate_series(1, %(n)s) i,
                 LATERAL (SELECT %(t0)s::timestamptz + (i - 1) * {span} / %(n)s AS c) x
            """,
            n=members,
            t0=t0,
        )
        times["receipts"] = step(
            f"{purchases:,} receipts (staging)",
            conn,
            f"""
            CREATE UNLOGGED TABLE bench_p AS
            SELECT j, mi, occurred,
                   pg_temp.u7(occurred, 'p' || j) AS pid,
                   (10000 + abs(hashint4(j * 7)) % 290000)::bigint * 100 AS due,
                   CASE WHEN mi IS NULL THEN 0
                        ELSE (10000 + abs(hashint4(j * 7)) % 290000)::bigint * 5 END AS earned,
                   (mi IS NOT NULL AND j % 10 = 3) AS redeems
            FROM (
              SELECT j,
                     CASE WHEN j % 10 < 7 THEN 1 + abs(hashint4(j)) % %(m)s END AS mi
              FROM generate_series(1, %(n)s) j
            ) s,
            LATERAL (
              SELECT CASE WHEN mi IS NULL
                       THEN %(t0)s::timestamptz
                            + ((abs(hashint4(j * 3)) % 1000000) / 1000000.0)::float8 * {span}
                       ELSE c + ((abs(hashint4(j * 3)) % 1000000) / 1000000.0)::float8
                            * (%(now)s::timestamptz - c) END
                     AS occurred
              FROM (SELECT %(t0)s::timestamptz + (mi - 1) * {span} / %(m)s AS c) cm
            ) o
            """,
            n=purchases,
            m=members,
            t0=t0,
            now=now - dt.timedelta(minutes=10),
        )
        times["purchases"] = step(
            "purchases",
            conn,
            """
            INSERT INTO purchases (id, store, external_id, channel, member_id, occurred_at,
              status, request_hash, program_version, subtotal, discount, total_due,
              redeem_currency, redeemed, redeemed_value, hold_expires_at, receipt_number,
              figures, created_at, settled_at, cancelled_at, created_by)
            SELECT pid, 'st' || (j % 20), 'B-' || j,
                   CASE j % 5 WHEN 0 THEN 'online' WHEN 1 THEN 'app' ELSE 'pos' END,
                   CASE WHEN mi IS NOT NULL THEN pg_temp.u7(
                     %(t0)s::timestamptz + (mi - 1) * interval '365 days' / %(m)s, 'm' || mi) END,
                   occurred, CASE WHEN j % 200 = 0 THEN 'cancelled' ELSE 'confirmed' END,
                   md5(j::text), 1, due + CASE WHEN redeems THEN earned / 2 ELSE 0 END, 0, due,
                   CASE WHEN redeems THEN 'BONUS' END,
                   CASE WHEN redeems THEN earned / 2 ELSE 0 END,
                   CASE WHEN redeems THEN earned / 2 ELSE 0 END,
                   NULL, NULL, '{}'::json, occurred, occurred, NULL, 'bench'
            FROM bench_p
            """,
            t0=t0,
            m=members,
        )
        step(
            "member wallets",
            conn,
            """
            INSERT INTO ledger_accounts (id, currency, kind, member_id, balance, debt, created_at)
            SELECT 1000 + i, 'BONUS', 'member', pg_temp.u7(
                     %(t0)s::timestamptz + (i - 1) * interval '365 days' / %(m)s, 'm' || i),
                   0, 0, now()
            FROM generate_series(1, %(m)s) i
            """,
            t0=t0,
            m=members,
        )
        system = dict(
            conn.execute(
                "SELECT kind, id FROM ledger_accounts "
                "WHERE member_id IS NULL AND currency = 'BONUS'"
            ).fetchall()
        )
        conn.commit()
        times["ledger"] = step(
            "ledger entries, lots and postings",
            conn,
            f"""
            CREATE UNLOGGED TABLE bench_l AS
            SELECT j, mi, pid, occurred, earned,
                   CASE WHEN redeems THEN earned / 2 ELSE 0 END AS redeemed,
                   date_trunc('day', occurred) + interval '181 days' AS expires_at
            FROM bench_p WHERE mi IS NOT NULL AND earned > 0;
            INSERT INTO ledger_entries (id, key, kind, currency, amount, member_id, purchase_id,
              occurred_at, created_at, actor, description)
            SELECT pg_temp.u7(occurred, 'e' || j), 'purchase:' || pid || ':earn:BONUS', 'earn',
                   'BONUS', earned, pg_temp.u7(%(t0)s::timestamptz + (mi - 1)
                   * interval '365 days' / %(m)s, 'm' || mi), pid, occurred, occurred, 'bench', ''
            FROM bench_l;
            INSERT INTO ledger_entries (id, key, kind, currency, amount, member_id, purchase_id,
              occurred_at, created_at, actor, description)
            SELECT pg_temp.u7(occurred, 'r' || j), 'purchase:' || pid || ':redeem', 'redeem',
                   'BONUS', redeemed, pg_temp.u7(%(t0)s::timestamptz + (mi - 1)
                   * interval '365 days' / %(m)s, 'm' || mi), pid, occurred, occurred, 'bench', ''
            FROM bench_l WHERE redeemed > 0;
            INSERT INTO ledger_entries (id, key, kind, currency, amount, member_id, purchase_id,
              occurred_at, created_at, actor, description)
            SELECT pg_temp.u7(expires_at, 'x' || j), 'expire:' || j || ':0', 'expire', 'BONUS',
                   earned - redeemed, pg_temp.u7(%(t0)s::timestamptz + (mi - 1)
                   * interval '365 days' / %(m)s, 'm' || mi), NULL, expires_at, expires_at,
                   'system:expiry', 'points expired'
            FROM bench_l WHERE expires_at <= now() AND earned > redeemed;
            INSERT INTO ledger_lots (id, account_id, entry_id, amount, remaining, available_at,
                                     expires_at)
            SELECT j, 1000 + mi, pg_temp.u7(occurred, 'e' || j), earned,
                   CASE WHEN expires_at <= now() THEN 0 ELSE earned - redeemed END,
                   occurred, expires_at
            FROM bench_l;
            INSERT INTO ledger_postings (entry_id, account_id, currency, amount, lot_id)
            SELECT pg_temp.u7(occurred, 'e' || j), 1000 + mi, 'BONUS', earned, j FROM bench_l
            UNION ALL
            SELECT pg_temp.u7(occurred, 'e' || j), {system["issuance"]}, 'BONUS', -earned, NULL
            FROM bench_l
            UNION ALL
            SELECT pg_temp.u7(occurred, 'r' || j), 1000 + mi, 'BONUS', -redeemed, j
            FROM bench_l WHERE redeemed > 0
            UNION ALL
            SELECT pg_temp.u7(occurred, 'r' || j), {system["redemption"]}, 'BONUS', redeemed, NULL
            FROM bench_l WHERE redeemed > 0
            UNION ALL
            SELECT pg_temp.u7(expires_at, 'x' || j), 1000 + mi, 'BONUS', -(earned - redeemed), j
            FROM bench_l WHERE expires_at <= now() AND earned > redeemed
            UNION ALL
            SELECT pg_temp.u7(expires_at, 'x' || j), {system["breakage"]}, 'BONUS',
                   earned - redeemed, NULL
            FROM bench_l WHERE expires_at <= now() AND earned > redeemed;
            """,
            t0=t0,
            m=members,
        )
        times["indexes"] = step(
            "indexes, constraints and balances",
            conn,
            ";\n".join(
                [d for _, d in indexes]
                + [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in constraints]
                + [
                    "UPDATE ledger_accounts a SET balance = s.total FROM (SELECT account_id, "
                    "sum(amount) AS total FROM ledger_postings GROUP BY account_id) s "
                    "WHERE a.id = s.account_id",
                    "SELECT setval(pg_get_serial_sequence('ledger_lots', 'id'), "
                    "(SELECT max(id) FROM ledger_lots))",
                    "SELECT setval(pg_get_serial_sequence('ledger_accounts', 'id'), "
                    "(SELECT max(id) FROM ledger_accounts))",
                    "DROP TABLE bench_p",
                    "DROP TABLE bench_l",
                    "ANALYZE",
                ]
            ),
        )
    return times


def timed(fn: Any, repeat: int = 3) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), max(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", help="time an existing bench database (name) instead")
    parser.add_argument("--full", action="store_true", help="with --reuse: time a full rollup")
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    name = args.reuse or f"kopilka_bench_reports_{secrets.token_hex(4)}"
    admin_psycopg = ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    os.environ["KOPILKA_DATABASE_URL"] = url
    os.environ.setdefault("KOPILKA_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT / "src"))
    from kopilka.core.config import reset_settings_cache
    from kopilka.core.db import get_db
    from kopilka.core.migrate import upgrade
    from kopilka.program import service as program
    from kopilka.reports import membersets
    from kopilka.reports import service as reports
    from kopilka.reports.jobs import run_rollup

    reset_settings_cache()
    result: dict[str, Any] = {"purchases": args.purchases, "members": args.members}
    if not args.reuse:
        with psycopg.connect(admin_psycopg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        upgrade(get_db().engine)
        with get_db().session() as s:
            program.apply_program(s, program.parse_program(PROGRAM), actor="bench")
            s.commit()
            from kopilka.ledger.service import system_account

            for kind in ("issuance", "redemption", "breakage"):
                system_account(s, "BONUS", kind)
            s.commit()
        print(f"generating in {name} …", flush=True)
        result["generate_seconds"] = generate(
            url.replace("postgresql+psycopg://", "postgresql://"), args.members, args.purchases
        )
    else:
        t = time.perf_counter()
        upgrade(get_db().engine)
        result["migrate_seconds"] = round(time.perf_counter() - t, 1)
        print(f"migrated {name}: {result['migrate_seconds']} s", flush=True)
    if not args.reuse or args.full:
        t = time.perf_counter()
        full = run_rollup(full=True, settle_seconds=0)
        result["rollup_full_seconds"] = round(time.perf_counter() - t, 1)
        print(f"full rollup: {result['rollup_full_seconds']} s ({full.days} days)", flush=True)
    if args.reuse:
        # what autovacuum does soon after a rollup or a migration rewrote these tables
        # (left to it, the timings below would measure the dead rows' scan)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
            c.autocommit = True
            c.execute("VACUUM ANALYZE report_members, report_member_days, report_member_sets")
    # a few new receipts, then the job's incremental run
    from kopilka.core.principal import Principal
    from kopilka.purchases import confirmation
    from kopilka.purchases.schemas import PurchaseIn

    system = Principal(kind="system", id="bench", role="admin")
    with get_db().session() as s:
        for i in range(20):
            body = PurchaseIn.model_validate(
                {
                    "external_id": f"INC-{secrets.token_hex(4)}-{i}",
                    "store": f"st{i % STORES}",
                    "channel": "pos",
                    "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
                    "lines": [{"sku": "X", "quantity": "1", "unit_price": "250.00"}],
                }
            )
            confirmation.confirm(s, body, system)
            s.commit()
    t = time.perf_counter()
    run_rollup(settle_seconds=0)
    result["rollup_incremental_seconds"] = round(time.perf_counter() - t, 2)
    print(f"incremental rollup: {result['rollup_incremental_seconds']} s", flush=True)

    today = dt.datetime.now(dt.UTC).date()
    cases = {
        "30 days, by day": reports.Filters(today - dt.timedelta(days=29), today),
        "90 days, by day": reports.Filters(today - dt.timedelta(days=89), today),
        "365 days, by week": reports.Filters(today - dt.timedelta(days=364), today, grain="week"),
        "90 days, store st3 + channel pos + tier gold": reports.Filters(
            today - dt.timedelta(days=89), today, store="st3", channel="pos", tier="gold"
        ),
    }

    def call(n: str, f: Any) -> None:  # as the API serves it
        with get_db().session() as s:
            reports.run(s, n, f)

    def once(n: str, f: Any) -> float:
        t = time.perf_counter()
        call(n, f)
        return time.perf_counter() - t

    timings: dict[str, dict[str, list[float]]] = {}
    cold: dict[str, dict[str, float]] = {}
    worst = worst_cold = 0.0
    for label, f in cases.items():
        timings[label], cold[label] = {}, {}
        for name_ in reports.REPORTS:
            membersets._cache.clear()  # a process that has decoded nothing yet
            first = once(name_, f)
            med, mx = timed(lambda n=name_, f=f: call(n, f))
            timings[label][name_] = [round(med, 3), round(mx, 3)]
            cold[label][name_] = round(first, 3)
            worst, worst_cold = max(worst, mx), max(worst_cold, first)
            print(
                f"  {label:48} {name_:12} cold {first * 1000:7.1f} ms  "
                f"median {med * 1000:7.1f} ms  max {mx * 1000:7.1f} ms"
            )
    result["report_seconds_median_max"] = timings
    result["report_seconds_cold"] = cold
    result["worst_report_seconds_warm"] = round(worst, 3)
    result["worst_report_seconds_cold"] = round(worst_cold, 3)
    # what a dashboard that was open meets after the worker's next run: the days it
    # redid (today, yesterday) decoded again, the others kept
    run_rollup(settle_seconds=0)
    after: dict[str, float] = {}
    for name_ in ("active", "roi", "campaigns"):
        after[name_] = round(once(name_, cases["90 days, by day"]), 3)
        print(f"  90 days, first call after a rollup             {name_:12} {after[name_]} s")
    result["report_seconds_after_rollup"] = after
    with get_db().session() as s:
        sample = reports.run(s, "receipts", cases["365 days, by week"]).summary
        roi = reports.run(s, "roi", cases["90 days, by day"]).summary
        liab = reports.run(s, "liability", cases["30 days, by day"]).summary
    result["sample"] = {
        "receipts_365d": sample["receipts"],
        "card_share_365d": str(sample["card_share"]),
        "roi_90d": str(roi["roi"]),
        "liability_now": str(liab["liability_total"]),
    }
    print(json.dumps(result["sample"]), flush=True)
    out = ROOT / "bench" / "results" / f"reports-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"worst report: {worst * 1000:.0f} ms warm, {worst_cold * 1000:.0f} ms cold; "
        f"written to {out.relative_to(ROOT)}"
    )
    get_db().dispose()
    if not args.keep and not args.reuse:
        with psycopg.connect(admin_psycopg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
