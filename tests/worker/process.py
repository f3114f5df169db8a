"""``kopilka worker`` as a separate process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from kopilka.core.db import Database


def start_worker(
    db: Database,
    *args: str,
    lease_seconds: int = 2,
    log_level: str = "ERROR",
    timeout_seconds: float | None = None,
) -> subprocess.Popen[bytes]:
    """``kopilka worker *args``; its log (JSON lines at ``log_level``) on its stderr;
    ``timeout_seconds``: how long it waits for one delivery's answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    env.update(
        {
            "KOPILKA_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "KOPILKA_WEBHOOK_LEASE_SECONDS": str(lease_seconds),
            "KOPILKA_LOG_LEVEL": log_level,
            "KOPILKA_AUTO_MIGRATE": "false",
        }
    )
    if timeout_seconds is not None:
        env["KOPILKA_WEBHOOK_TIMEOUT_SECONDS"] = str(timeout_seconds)
    return subprocess.Popen(
        [sys.executable, "-m", "kopilka", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
