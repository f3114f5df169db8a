"""Webhook delivery throughput of one worker to a local receiver.

    .venv/bin/python -m bench.worker_throughput [--events 5000] [--db postgresql|sqlite]
        [--concurrency 8] [--batch 100] [--receivers-delay-ms 0]

Builds a fresh database (PostgreSQL at KOPILKA_BENCH_PG_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, or an SQLite file), writes ``--events``
events of distinct members with one endpoint subscribed, then times one ``Worker`` draining
them to a threaded ``http.server`` on 127.0.0.1 (another process) that checks every
signature. Prints
events/s and writes bench/results/worker-throughput-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import secrets
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

PG_ADMIN = os.environ.get("KOPILKA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-0123456789"


def _receive(ready: mp.Queue[int], counts: Any, delay_ms: float) -> None:
    """The receiver, in a process of its own (as a real one would be): verifies each
    signature and counts."""
    from kopilka.webhooks.signing import verify_signature

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify_signature(SECRET, self.headers["Kopilka-Signature"], body)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            with lock:
                counts[0 if ok else 1] += 1
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--receiver-delay-ms", type=float, default=0.0)
    args = ap.parse_args()
    name = f"kopilka_wbench_{secrets.token_hex(4)}"
    admin = None
    if args.db == "postgresql":
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        os.environ["KOPILKA_DATABASE_URL"] = PG_ADMIN.rpartition("/")[0] + f"/{name}"
    else:
        path = Path(tempfile.mkdtemp()) / "bench.db"
        os.environ["KOPILKA_DATABASE_URL"] = f"sqlite:///{path}"
    os.environ["KOPILKA_LOG_LEVEL"] = "WARNING"

    ready: mp.Queue[int] = mp.Queue()
    counts = mp.Array("l", 2)  # good, bad
    receiver = mp.Process(
        target=_receive, args=(ready, counts, args.receiver_delay_ms), daemon=True
    )
    receiver.start()
    port = ready.get(timeout=30)
    try:
        from kopilka.core.db import get_db
        from kopilka.core.migrate import upgrade
        from kopilka.events import service as events
        from kopilka.webhooks.models import WebhookEndpoint
        from kopilka.worker.loop import Worker

        db = get_db()
        upgrade(db.engine)
        with db.session() as s:
            s.add(
                WebhookEndpoint(
                    url=f"http://127.0.0.1:{port}/h",
                    events=["*"],
                    secret=SECRET,
                    active=True,
                    consecutive_failures=0,
                )
            )
            s.commit()
            for i in range(args.events):
                events.emit(s, "member.updated", {"n": i}, member_id=uuid.uuid4())
            s.commit()
        w = Worker(db, batch=args.batch, concurrency=args.concurrency, jobs=False)
        t = time.perf_counter()
        while w.run(once=True):
            pass
        seconds = time.perf_counter() - t
        good, bad = counts[0], counts[1]
        rate = good / seconds
        assert good == args.events and not bad, (good, bad)
        print(
            f"{args.db}: {good} deliveries in {seconds:.2f} s: {rate:.0f} events/s "
            f"(concurrency {args.concurrency}, batch {args.batch})"
        )
        out = Path(__file__).resolve().parent / "results"
        out.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        (out / f"worker-throughput-{stamp}.json").write_text(
            json.dumps(
                {
                    "db": args.db,
                    "events": args.events,
                    "seconds": round(seconds, 3),
                    "events_per_second": round(rate, 1),
                    "concurrency": args.concurrency,
                    "batch": args.batch,
                    "receiver_delay_ms": args.receiver_delay_ms,
                    "cpus": os.cpu_count(),
                },
                indent=2,
            )
            + "\n"
        )
        db.dispose()
    finally:
        receiver.terminate()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
