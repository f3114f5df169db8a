"""The command line, run as a user would (a subprocess on a fresh SQLite file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PROGRAM


def kopilka(
    tmp: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    e["KOPILKA_DATABASE_URL"] = f"sqlite:///{tmp / 'cli.db'}"
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kopilka", *args],
        cwd=tmp,
        env=e,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


def test_migrate_is_idempotent(tmp: Path) -> None:
    first = kopilka(tmp, "migrate")
    assert first.returncode == 0, first.stderr
    again = kopilka(tmp, "migrate")
    assert again.returncode == 0
    assert again.stdout == first.stdout


def test_program_apply_export(tmp: Path) -> None:
    f = tmp / "program.yaml"
    f.write_text(TEST_PROGRAM, encoding="utf-8")
    r = kopilka(tmp, "program", "apply", str(f))
    assert r.returncode == 0, r.stderr
    assert "applied: version 1" in r.stdout
    r = kopilka(tmp, "program", "apply", str(f))
    assert "unchanged: version 1" in r.stdout
    out = kopilka(tmp, "program", "export")
    assert out.returncode == 0
    assert "Test programme" in out.stdout
    bad = tmp / "bad.yaml"
    bad.write_text("name: x\ncurrencies:\n  - {code: BONUS, name: B, precision: 9}\n")
    r = kopilka(tmp, "program", "apply", str(bad))
    assert r.returncode == 2
    assert "currencies[0].precision" in r.stderr


def test_apikey_create_prints_key_alone_on_last_line(tmp: Path) -> None:
    r = kopilka(tmp, "apikey", "create", "--name", "till", "--role", "cashier", "--store", "msk-01")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("kop_") and " " not in last
    r = kopilka(tmp, "apikey", "create", "--name", "x", "--role", "wizard")
    assert r.returncode == 2


def test_user_create_reads_password_from_stdin(tmp: Path) -> None:
    r = kopilka(
        tmp,
        "user",
        "create",
        "--email",
        "Ops@Example.com",
        "--role",
        "manager",
        stdin="correct horse battery staple\n",
    )
    assert r.returncode == 0, r.stderr
    assert "ops@example.com" in r.stdout
    short = kopilka(
        tmp, "user", "create", "--email", "b@example.com", "--role", "admin", stdin="x\n"
    )
    assert short.returncode == 2


def test_production_refuses_default_secret(tmp: Path) -> None:
    r = kopilka(tmp, "migrate", env={"KOPILKA_ENVIRONMENT": "production"})
    assert r.returncode == 2
    assert "KOPILKA_SECRET_KEY" in r.stderr


def test_serve_refuses_schema_behind_on_postgres_style_config(tmp: Path) -> None:
    fresh = tmp / "fresh"
    fresh.mkdir()
    r = kopilka(
        fresh,
        "serve",
        "--port",
        "1",
        env={
            "KOPILKA_DATABASE_URL": f"sqlite:///{fresh / 'behind.db'}",
            "KOPILKA_AUTO_MIGRATE": "false",
        },
    )
    assert r.returncode == 3
    assert "kopilka migrate" in r.stderr


def test_demo_serves_the_api_with_its_programme_and_members(tmp_path: Path) -> None:
    # given a fresh directory, when `kopilka demo` runs as the README says (fewer members)
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopilka", "demo", "--members", "20", "--port", str(port)],
        cwd=tmp_path,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/health/ready", timeout=2) as r:
                    ready = r.status
                    break
            except OSError:
                time.sleep(0.5)
        # then it serves: /health/ready answers 200
        assert ready == 200, proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
        # and the admin key it printed reads the demo's members and rules
        assert proc.stdout is not None
        lines = iter(proc.stdout.readline, "")
        next(ln for ln in lines if ln.startswith("  Admin API key:"))
        key = next(lines).strip()
        assert key.startswith("kop_")

        def get(path: str) -> Any:
            req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())

        assert len(get("/api/v1/members?limit=5")["items"]) == 5
        rules = [r["key"] for r in get("/api/v1/rules")["items"]]
        assert rules[:2] == ["base-earn", "bakery-bonus"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert (tmp_path / "kopilka-demo.db").exists()
