"""``kopilka worker`` as a separate process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from kopilka.core.db import Database


def start_worker(db: Database, *args: str, lease_seconds: int = 2) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    env.update(
        {
            "KOPILKA_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "KOPILKA_WEBHOOK_LEASE_SECONDS": str(lease_seconds),
            "KOPILKA_LOG_LEVEL": "ERROR",
            "KOPILKA_AUTO_MIGRATE": "false",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "kopilka", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
