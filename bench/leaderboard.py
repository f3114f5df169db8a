"""Benchmark of the leaderboards: a board's top 100 and one member's rank over 1,000,000
members with scores on PostgreSQL.

    PYTHONPATH=src .venv/bin/python bench/leaderboard.py [--members 1000000] [--runs 200] [--keep]

It creates its own PostgreSQL database (``KOPILKA_BENCH_PG_URL``, default the local server
as ``postgres``), migrates it, and fills two boards of one month in SQL
(``generate_series``): ``spenders`` (money spent: values spread, few ties) and
``regulars`` (visits, 1 to 30: a few values shared by tens of thousands each, the worst
case of ties), every member scored on both, 80 % of them opted in. Then, through the
service's own queries (``leaderboards.service.top`` and ``rank_of``), it times the top
100 and the rank of a member in the middle and of one near the bottom of each board,
``--runs`` times each after a warm-up, and prints p50 and p95 in milliseconds (written as
JSON to bench/results/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kopilka.core.db import Database, make_engine
from kopilka.core.migrate import upgrade
from kopilka.leaderboards import service
from kopilka.spec.leaderboards import LeaderboardSpec

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PERIOD = "2026-12"
BOARDS = {
    "spenders": LeaderboardSpec.model_validate(
        {"code": "spenders", "name": {"ru": "Щедрые", "en": "Spenders"}, "metric": "spent"}
    ),
    "regulars": LeaderboardSpec.model_validate(
        {"code": "regulars", "name": {"ru": "Завсегдатаи", "en": "Regulars"}, "metric": "visits"}
    ),
}

# Members' ids made in SQL from their number (uuid-shaped md5), choices and scores.
FILL = """
INSERT INTO leaderboard_players (member_id, opted_in, nickname, nickname_key, masked_name,
                                 updated_at)
SELECT md5('m' || i)::uuid, (i %% 5) <> 0, NULL, NULL, 'Member ' || i, now()
FROM generate_series(1, %(n)s) AS i;
INSERT INTO leaderboard_scores (board, period, store, member_id, value, minus_value, visible,
                                reached_at)
SELECT board, period, store, member_id, v, -v, visible, reached_at FROM (
SELECT 'spenders' AS board, %(period)s AS period, '' AS store, md5('m' || i)::uuid AS member_id,
       -- money spent, in 1/10 000 (the Amount type): 0.01 to 100 000.00, skewed low
       (floor(power(random(), 3) * 10000000) + 1)::bigint * 100 AS v,
       (i %% 5) <> 0 AS visible,
       timestamptz '2026-12-01 00:00+03' + (random() * interval '6 days') AS reached_at
FROM generate_series(1, %(n)s) AS i) AS x;
INSERT INTO leaderboard_scores (board, period, store, member_id, value, minus_value, visible,
                                reached_at)
SELECT board, period, store, member_id, v, -v, visible, reached_at FROM (
SELECT 'regulars' AS board, %(period)s AS period, '' AS store, md5('m' || i)::uuid AS member_id,
       (floor(power(random(), 2) * 30) + 1)::bigint * 10000 AS v,
       (i %% 5) <> 0 AS visible,
       timestamptz '2026-12-01 00:00+03' + (random() * interval '6 days') AS reached_at
FROM generate_series(1, %(n)s) AS i) AS x
"""


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    for _ in range(5):  # warm-up: plans prepared, pages cached
        fn()
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return {
        "p50_ms": round(statistics.median(took), 2),
        "p95_ms": round(took[int(len(took) * 0.95) - 1], 2),
        "max_ms": round(took[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    name = f"kopilka_bench_lb_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name, drivername="postgresql+psycopg")
    engine = make_engine(url=url.render_as_string(hide_password=False))
    results: dict[str, Any] = {"members": args.members, "runs": args.runs}
    try:
        upgrade(engine)
        t = time.perf_counter()
        with engine.begin() as conn:
            for statement in FILL.split(";\n"):
                conn.exec_driver_sql(statement, {"n": args.members, "period": PERIOD})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE leaderboard_scores"))
            conn.execute(text("VACUUM ANALYZE leaderboard_players"))
        results["load_s"] = round(time.perf_counter() - t, 1)
        print(f"loaded {args.members:,} members on two boards in {results['load_s']} s")
        db = Database(engine)
        with db.session() as s:
            shown = s.execute(
                text("SELECT count(*) FROM leaderboard_scores WHERE board = 'spenders' AND visible")
            ).scalar_one()
            results["shown"] = shown
            for code, board in BOARDS.items():
                w = service.Where(board, PERIOD, "")
                # the members at the middle and near the bottom of the board (not timed)
                service.compact(s)
                s.commit()
                picks = {}
                for label, at in (("middle", shown // 2), ("bottom", shown - 10)):
                    picks[label] = s.execute(
                        text(
                            "SELECT member_id FROM leaderboard_scores WHERE board = :b AND "
                            "period = :p AND store = '' AND visible "
                            "ORDER BY minus_value, reached_at, member_id OFFSET :o LIMIT 1"
                        ),
                        {"b": code, "p": PERIOD, "o": at},
                    ).scalar_one()
                top = service.top(s, w, 100)
                assert [r["rank"] for r in top] == list(range(1, 101))
                results[f"{code}.top100"] = timed(lambda w=w: service.top(s, w, 100), args.runs)
                for label, member in picks.items():
                    member_id = uuid.UUID(str(member))
                    rank = service.rank_of(s, w, member_id)
                    assert rank is not None
                    results[f"{code}.rank_{label}"] = {
                        "rank": rank["rank"],
                        **timed(
                            lambda w=w, m=member_id: service.rank_of(s, w, m),  # type: ignore[misc]
                            args.runs,
                        ),
                    }
                s.rollback()
    finally:
        engine.dispose()
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for key, value in results.items():
        print(f"{key}: {value}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    (out / f"leaderboard-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
