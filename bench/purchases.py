"""Benchmark of the hot path: purchase confirmations over HTTP against PostgreSQL.

    .venv/bin/python bench/purchases.py [--clients 4] [--seconds 20] [--members 5000]

It creates its own PostgreSQL database, migrates it, applies the demo programme, seeds
members with balances, starts `kopilka serve --workers 2`, drives `POST /api/v1/purchases`
with `wrk` (a Lua script: unique receipts, random members, one in three redeeming points),
and, before and after that (the server stopped), on the same PostgreSQL with the same
client count, runs `pgbench` (TPC-B-like) as the reference cost of a comparable
account-update transaction: the mean of its two runs is the reference. It prints
confirmations/s, p50/p99 latency and the ratio confirmations/s ÷ pgbench tps, and writes
them as JSON to bench/results/. Needs `wrk` and `pgbench` (Debian: `apt-get install wrk
postgresql-client`).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zoneinfo
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def sh(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def db_url(name: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{name}"


# ``--challenges three``: three challenges every bench receipt counts for (plain sums: the
# receipt's statement adds to them), one of which members complete (a reward at the fifth
# receipt of the week); ``none``: the demo programme without its challenges.
THREE_CHALLENGES = [
    {
        "code": "bench-five-a-week",
        "name": {"ru": "Пять покупок за неделю", "en": "Five purchases a week"},
        "goal": {"count": "purchases", "target": 5, "where": {"lines": {"skus": ["COFFEE"]}}},
        "period": {"every": "week"},
        "reward": {"currency": "BONUS", "amount": "50"},
    },
    {
        "code": "bench-paid-month",
        "name": {"ru": "Сто тысяч за месяц", "en": "A hundred thousand a month"},
        "goal": {"count": "paid", "target": "100000"},
        "period": {"every": "month"},
        "reward": {"currency": "BONUS", "amount": "1000"},
    },
    {
        "code": "bench-milk",
        "name": {"ru": "Тысяча литров молока", "en": "A thousand litres of milk"},
        "goal": {"count": "units", "target": 1000, "where": {"lines": {"skus": ["MILK"]}}},
        "reward": {"currency": "BONUS", "amount": "500"},
    },
]


def bench_program(challenges: str = "demo") -> str:
    """The demo programme, with its own challenges (``demo``), none, or ``three``."""
    import yaml

    from kopilka.demo.seed import demo_program_text

    text = demo_program_text()
    if challenges == "demo":
        return text
    doc = yaml.safe_load(text)
    doc["challenges"] = THREE_CHALLENGES if challenges == "three" else []
    return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def seed(
    url: str, members: int, env: dict[str, str], challenges: str = "demo"
) -> tuple[list[str], str]:
    """Members with 1,000 available BONUS each; returns their cards and a till key. Runs
    with the server's settings (its data keys make the cards' blind indexes)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("KOPILKA_")})
    os.environ["KOPILKA_DATABASE_URL"] = url
    from kopilka.core.config import reset_settings_cache

    reset_settings_cache()
    from decimal import Decimal

    from kopilka.apikeys.service import create_key
    from kopilka.core.db import get_db
    from kopilka.ledger import service as ledger
    from kopilka.members.schemas import MemberCreate
    from kopilka.members.service import create_member
    from kopilka.program.service import apply_program, parse_program
    from kopilka.wiring import wire

    wire()  # the outbox's consumer, the API keys' registry: what the server's app registers
    db = get_db()
    cards = []
    with db.session() as s:
        apply_program(s, parse_program(bench_program(challenges)), actor="bench")
        s.commit()
        for i in range(members):
            m = create_member(s, MemberCreate(phone=f"+7915{i:07d}"), "RU")
            ledger.credit(
                s,
                key=f"bench-seed-{m.id}",
                kind="adjust",
                member_id=m.id,
                currency="BONUS",
                amount=Decimal("1000"),
                actor="bench",
                pending_days=0,
                counter="adjustment",
            )
            cards.append(m.card_number)
            if i % 500 == 0:
                s.commit()
        _, key = create_key(s, "bench till", "cashier", "msk-01")
        s.commit()
    db.dispose()
    return cards, key


LUA = r"""
local cards = {%(cards)s}
local counter = 0
-- a global, not a local: setup() runs in the main Lua state and sets each thread's own
-- global "tid", which a chunk-level local would shadow (every thread would then send the
-- same receipt ids, and half the "confirmations" were replays of another thread's)
tid = 0
local threads = {}
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() + tid * 7919)
end
request = function()
  counter = counter + 1
  local card = cards[math.random(#cards)]
  local redeem = ""
  if counter %% 3 == 0 then
    redeem = ',"redeem":{"currency":"BONUS","amount":"10.00"}'
  end
  local body = '{"external_id":"B-%(run)s-' .. tid .. '-' .. counter .. '",' ..
    '"member":{"card":"' .. card .. '"},"store":"msk-01","channel":"pos",' ..
    '"occurred_at":"%(day)sT10:00:00+03:00","lines":[' ..
    '{"sku":"MILK-1L","name":"Milk","category":"dairy","quantity":"2","unit_price":"89.90"},' ..
    '{"sku":"COFFEE-250","name":"Coffee","category":"grocery",' ..
    '"quantity":"1","unit_price":"450.00"}' ..
    ']' .. redeem .. '}'
  return wrk.format("POST", "/api/v1/purchases", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


def last_sunday() -> str:
    """The last Sunday before today in Moscow (a week ago on a Sunday): the demo's weekend
    campaign runs on it, and it is inside the programme's clock window (receipts at most
    30 days old, none ahead of the server's clock)."""
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Moscow")).date()
    return (today - dt.timedelta(days=(today.weekday() + 1) % 7 or 7)).isoformat()


def parse_wrk(out: str) -> dict[str, float]:
    def ms(v: str) -> float:
        num, unit = re.match(r"([\d.]+)(\w+)", v).groups()  # type: ignore[union-attr]
        return float(num) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]

    res: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for p in ("50", "99"):
        m = re.search(rf"\s{p}(?:\.000)?%\s+([\d.]+\w+)", out)
        res[f"p{p}_ms"] = ms(m.group(1)) if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non_2xx"] = float(bad.group(1)) if bad else 0.0
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = float(sum(int(x) for x in errs.groups())) if errs else 0.0
    res["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return res


def proc_cpu(pid: int | str) -> tuple[str, int, float] | None:
    """A process's command name, process group and CPU seconds so far (user + system),
    read from /proc (Linux); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(server_pgid: int) -> dict[str, tuple[str, float]]:
    """CPU seconds used so far by each process of the server (its process group) and of
    PostgreSQL, read from /proc (Linux), and by this script's finished children (wrk,
    under the key "wrk")."""
    out: dict[str, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        stat = proc_cpu(entry) if entry.isdigit() else None
        if stat is None:
            continue
        comm, pgid, used = stat
        if pgid == server_pgid:
            out[entry] = ("kopilka", used)
        elif comm.startswith("postgres"):
            out[entry] = ("postgres", used)
    # wrk has exited by the second reading: it counts among this process's children
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["wrk"] = ("wrk", children.ru_utime + children.ru_stime)
    return out


def cpu_used(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per group between two readings, counting the processes alive at the
    second (a process that ended meanwhile, such as another client's PostgreSQL
    backend, is left out rather than counted negative). The PostgreSQL figure includes
    whatever else the server ran meanwhile: run the benchmark on a quiet machine."""
    out = {"kopilka": 0.0, "postgres": 0.0, "wrk": 0.0}
    for pid, (group, used) in after.items():
        out[group] += used - before.get(pid, (group, 0.0))[1]
    return out


def pgbench_tps(
    admin: psycopg.Connection, url: str, clients: int, threads: int, seconds: int
) -> float:
    """One pgbench run (TPC-B-like, scale 10) on freshly initialised tables; its tps."""
    print(f"pgbench: scale 10, {clients} clients, {seconds} s …", flush=True)
    sh("pgbench", "-i", "-s", "10", "-q", url)
    admin.execute("CHECKPOINT")
    out = sh("pgbench", "-c", str(clients), "-j", str(threads), "-T", str(seconds), url)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def _stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8911)
    ap.add_argument("--skip-pgbench", action="store_true", help="only the Kopilka side")
    ap.add_argument(
        "--challenges",
        choices=("demo", "none", "three"),
        default="demo",
        help="the demo programme's challenges, none, or three that every receipt counts for",
    )
    ap.add_argument(
        "--day",
        default=last_sunday(),
        help="the receipts' date (default the last Sunday: the demo's weekend campaign runs, "
        "and the programme takes receipts up to 30 days old)",
    )
    ap.add_argument("--py-spy", metavar="FILE", help="record the server with py-spy into FILE")
    ap.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="with --py-spy: sample only threads holding the GIL (the server's Python CPU)",
    )
    args = ap.parse_args()
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install {tool})")
    run = secrets.token_hex(4)
    name, pgb = f"kopilka_bench_{run}", f"pgbench_{run}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.execute(f'CREATE DATABASE "{pgb}"')
    url = db_url(name)
    env = {
        **os.environ,
        "KOPILKA_DATABASE_URL": url,
        "KOPILKA_LOG_LEVEL": "WARNING",
        "KOPILKA_ENVIRONMENT": "production",
        "KOPILKA_SECRET_KEY": secrets.token_urlsafe(48),
        # production refuses the public development keys and the console code channel
        "KOPILKA_DATA_KEYS": "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "KOPILKA_INDEX_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "KOPILKA_MEMBER_CODE_CHANNEL": "file",
        "KOPILKA_MEMBER_CODE_FILE": os.devnull,
        "KOPILKA_DB_POOL_SIZE": str(max(4, args.clients // args.workers + 2)),
    }
    kopilka = str(Path(sys.executable).parent / "kopilka")
    server = None
    try:
        print(f"migrating and seeding {args.members} members …", flush=True)
        sh(kopilka, "migrate", env=env)
        cards, key = seed(url, args.members, env, args.challenges)
        threads = min(args.clients, os.cpu_count() or 2)
        tps_runs: list[float] = []
        if not args.skip_pgbench:
            tps_runs.append(pgbench_tps(admin, db_url(pgb), args.clients, threads, args.seconds))
        server = subprocess.Popen(
            [kopilka, "serve", "--port", str(args.port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"{base}/health/ready", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not become ready")
        scripts = {}
        for phase in ("warm", "run"):  # receipt ids must differ between the two
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(
                    LUA
                    % {
                        "cards": ",".join(f'"{c}"' for c in cards),
                        "key": key,
                        "run": f"{run}{phase}",
                        "day": args.day,
                    }
                )
                scripts[phase] = f.name
        lua = scripts["run"]
        print("warming up …", flush=True)
        sh("wrk", "-t1", "-c2", "-d3s", "-s", scripts["warm"], base)
        print(f"wrk: {args.clients} clients, {args.seconds} s …", flush=True)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--subprocesses",
                    "-o",
                    args.py_spy,
                    "-f",
                    "raw",
                    "-d",
                    str(args.seconds),
                    "-r",
                    "200",
                    "-p",
                    str(server.pid),
                    *(["--gil"] if args.py_spy_gil else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        # each phase starts with no dirty buffers of the one before (a checkpoint
        # writing them out during the other phase's run would be charged to it)
        admin.execute("CHECKPOINT")
        cpu_before = cpu_by_process(server.pid)
        out = sh(
            "wrk",
            f"-t{threads}",
            f"-c{args.clients}",
            f"-d{args.seconds}s",
            "--latency",
            "-s",
            lua,
            base,
        )
        cpu_after = cpu_by_process(server.pid)
        if spy is not None:
            spy.wait(timeout=60)
        kop = parse_wrk(out)
        _stop(server)
        server = None
        if not args.skip_pgbench:
            tps_runs.append(pgbench_tps(admin, db_url(pgb), args.clients, threads, args.seconds))
        # the reference is the mean of the runs before and after Kopilka's: the same
        # machine's disk and neighbours drift within a run (seen: 2,600-4,500 tps at 4
        # clients between runs minutes apart)
        tps = sum(tps_runs) / len(tps_runs) if tps_runs else float("nan")
        with psycopg.connect(url) as conn:
            confirmed = conn.execute("SELECT count(*) FROM purchases").fetchone()[0]  # type: ignore[index]
        result = {
            "clients": args.clients,
            "seconds": args.seconds,
            "workers": args.workers,
            "confirmations_per_s": round(kop["rps"], 1),
            "p50_ms": kop["p50_ms"],
            "p99_ms": kop["p99_ms"],
            "non_2xx": int(kop["non_2xx"]),
            "socket_errors": int(kop["socket_errors"]),
            "requests": int(kop["requests"]),
            "purchases_recorded": int(confirmed),
            "pgbench_tps": round(tps, 1),
            "pgbench_tps_runs": [round(t, 1) for t in tps_runs],
            "ratio": round(kop["rps"] / tps, 3),
            # CPU milliseconds per request (wrk counts every reply, 2xx or not)
            "cpu_ms_per_request": {
                k: round(v * 1000 / max(kop["requests"], 1), 2)
                for k, v in cpu_used(cpu_before, cpu_after).items()
            },
        }
        print(json.dumps(result, indent=2))
        out_dir = ROOT / "bench" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"purchases-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
            json.dumps(result, indent=2)
        )
        ok = result["non_2xx"] == 0 and result["socket_errors"] == 0
        runs = " and ".join(f"{t:.0f}" for t in tps_runs)
        print(
            f"\nconfirmations/s {result['confirmations_per_s']}, p50 {kop['p50_ms']:.1f} ms, "
            f"p99 {kop['p99_ms']:.1f} ms, pgbench {tps:.0f} tps"
            f"{f' ({runs} before and after)' if runs else ''}, ratio {result['ratio']}"
            f"{'' if ok else '  (FAILED REQUESTS)'}"
        )
        cpu = result["cpu_ms_per_request"]
        assert isinstance(cpu, dict)
        print(
            "CPU per confirmation: "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu.items())
            + f" (of {1000 * (os.cpu_count() or 1) / max(kop['rps'], 1):.2f} ms of CPU "
            "available per confirmation at this rate)"
        )
    finally:
        if server is not None:
            _stop(server)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP DATABASE IF EXISTS "{pgb}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
