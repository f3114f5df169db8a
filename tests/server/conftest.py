"""A user's day through the real server: ``kopilka serve`` and ``kopilka worker`` started as
processes, configured by the environment and set up with the ``kopilka`` command, the way
the README does it.

``KOPILKA_TEST_DB=sqlite``: a fresh SQLite file in a temporary directory; ``kopilka serve``
migrates it by itself and runs the embedded worker while the set-up commands run, then the
day's ``kopilka serve`` starts on the database so made. ``KOPILKA_TEST_DB=postgresql``: a
database of its own on ``KOPILKA_TEST_PG_URL`` (created here, dropped at the end),
``kopilka migrate`` first, then ``kopilka serve --workers 2`` and a separate ``kopilka
worker``. One server per pytest session; the steps of ``test_day.py`` share it. A failing
step's report carries the tail of every process's log.

Nothing of the test process's own set-up reaches the processes: they get the environment
without any ``KOPILKA_*`` variable, plus what a user would set.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND, PG_ADMIN_URL
from tests.receiver import ReceiverServer

HERE = Path(__file__).resolve().parent
PROGRAMME = HERE / "programme.yaml"
START_SECONDS = 180.0  # a cold start on a busy two-core machine (imports, migrations)
STOP_SECONDS = 60.0
CLI_SECONDS = 180.0
REQUEST_SECONDS = 60.0

# What a clean log never holds: a traceback, a line logged at ERROR or above (structlog's
# JSON lines, and the standard library's format that uvicorn uses), or a request answered
# with a 5xx.
BAD_LOG_LINE = re.compile(
    r'Traceback|"level":\s*"(error|critical|exception)"|^(ERROR|CRITICAL)\b|"status":\s*5\d\d',
    re.MULTILINE,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Process:
    """A ``kopilka`` process started by the day, its output (stdout and stderr) in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # it did not stop on SIGTERM within STOP_SECONDS

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> int:
        """SIGTERM to its process group (uvicorn's workers too); SIGKILL if it lingers."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(STOP_SECONDS)
        return int(self.popen.returncode)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


@dataclass
class Day:
    """The running installation and what the steps learnt along the way."""

    backend: str
    directory: Path
    env: dict[str, str]
    receiver: ReceiverServer  # the webhook endpoint, on loopback
    base_url: str = ""
    processes: list[Process] = field(default_factory=list)
    cli_log: list[str] = field(default_factory=list)
    admin: dict[str, str] = field(default_factory=dict)  # headers with the admin key
    till: dict[str, str] = field(default_factory=dict)  # a cashier key of msk-01
    console_email: str = "ops@example.com"
    console_password: str = "a long passphrase for the day"
    code_file: Path = Path()
    state: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------------- processes

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """``kopilka ARGS`` as a user runs it, in the day's directory and environment."""
        done = subprocess.run(
            [sys.executable, "-m", "kopilka", *args],
            cwd=self.directory,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_SECONDS,
            check=False,
        )
        self.cli_log.append(
            f"$ kopilka {' '.join(args)}  → {done.returncode}\n{done.stdout}{done.stderr}"
        )
        return done

    def start(self, name: str, *args: str) -> Process:
        """`kopilka ARGS` in the background; `name` names its log."""
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "kopilka", *args],
                cwd=self.directory,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its workers
            )
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def serve(self, *args: str, name: str = "serve") -> Process:
        """``kopilka serve`` on a free port, once ``/health/ready`` answers 200."""
        for _ in range(3):  # a port taken between choosing and binding: try another
            port = _free_port()
            proc = self.start(name, "serve", "--port", str(port), *args)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_SECONDS
            while time.monotonic() < deadline and proc.alive():
                try:
                    if httpx.get(f"{base}/health/ready", timeout=5).status_code == 200:
                        self.base_url = base
                        return proc
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            if proc.alive() or "address already in use" not in proc.text().lower():
                break
            self.processes.remove(proc)
        proc.stop()
        pytest.fail(f"kopilka serve did not become ready:\n{proc.tail()}", pytrace=False)

    def stop_all(self) -> dict[str, int]:
        return {p.name: p.stop() for p in self.processes}

    def logs(self) -> str:
        """Each process's lines that a clean day never writes, then the tail of its log."""
        bad = self.bad_log_lines()
        parts = []
        for p in self.processes:
            if p.name in bad:
                parts.append(f"--- {p.name}: errors ---\n" + "\n".join(bad[p.name][:20]))
            parts.append(f"--- {p.name} ({p.log}), last lines ---\n{p.tail()}")
        parts.append("--- kopilka commands ---\n" + "\n".join(self.cli_log[-6:]))
        return "\n".join(parts)

    def bad_log_lines(self) -> dict[str, list[str]]:
        """Per process, the lines of its log that a clean day never writes."""
        found: dict[str, list[str]] = {}
        for p in self.processes:
            lines = [ln for ln in p.text().splitlines() if BAD_LOG_LINE.search(ln)]
            if lines:
                found[p.name] = lines
        return found

    # -------------------------------------------------------------------- HTTP

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client of the server (a browser, a till, the member app: each its own)."""
        return httpx.Client(base_url=self.base_url, timeout=REQUEST_SECONDS, **kwargs)

    def need(self, key: str) -> Any:
        """What an earlier step made; a clear failure if that step did not get that far."""
        if key not in self.state:
            pytest.fail(f"an earlier step did not make {key!r}; see its failure", pytrace=False)
        return self.state[key]


def _environment(directory: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    env.update(
        {
            "KOPILKA_DATABASE_URL": database_url,
            "KOPILKA_SECRET_KEY": secrets.token_urlsafe(48),
            "KOPILKA_MEMBER_CODE_CHANNEL": "file",
            "KOPILKA_MEMBER_CODE_FILE": str(directory / "member-codes.log"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _set_up(day: Day) -> None:
    """The programme, an admin and a till key, a console user: with the ``kopilka`` command."""
    applied = day.cli("program", "apply", str(PROGRAMME))
    assert applied.returncode == 0, day.logs()
    assert applied.stdout.startswith("programme applied: version 1"), applied.stdout
    for role, extra, headers in (
        ("admin", (), day.admin),
        ("cashier", ("--store", "msk-01"), day.till),
    ):
        made = day.cli("apikey", "create", "--name", f"day {role}", "--role", role, *extra)
        assert made.returncode == 0, day.logs()
        key = made.stdout.strip().splitlines()[-1]
        assert key.startswith("kop_") and " " not in key, made.stdout
        headers["Authorization"] = f"Bearer {key}"
    user = day.cli(
        "user",
        "create",
        "--email",
        day.console_email,
        "--role",
        "admin",
        stdin=day.console_password + "\n",
    )
    assert user.returncode == 0, day.logs()


@pytest.fixture(scope="session")
def day() -> Iterator[Day]:
    directory = Path(tempfile.mkdtemp(prefix="kopilka-server-"))
    d = Day(BACKEND, directory, {}, ReceiverServer(), code_file=directory / "member-codes.log")
    pg_name: str | None = None
    try:
        if BACKEND == "sqlite":
            # The installation, as the README's first steps: the server on the embedded
            # default migrates a fresh file and runs a worker in-process; the set-up
            # commands run beside it. Then the day's server starts on that database (the
            # schema already current: the start that answered 500 in issue 19, since
            # nothing imported every model before the app).
            d.env = _environment(directory, f"sqlite:///{directory}/kopilka.db")
            installation = d.serve(name="serve-installation")
            _set_up(d)
            installation.stop()
            d.serve()
        elif BACKEND == "postgresql":
            # As "Running on PostgreSQL": migrate, set up, then the server and a worker.
            pg_name = f"kopilka_server_{secrets.token_hex(6)}"
            try:
                with psycopg.connect(
                    _psycopg_url(PG_ADMIN_URL), autocommit=True, connect_timeout=5
                ) as admin:
                    admin.execute(f'CREATE DATABASE "{pg_name}"')
            except psycopg.OperationalError as exc:
                pg_name = None
                pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}", pytrace=False)
            url = make_url(PG_ADMIN_URL).set(database=pg_name)
            d.env = _environment(directory, url.render_as_string(hide_password=False))
            migrated = d.cli("migrate")
            assert migrated.returncode == 0, d.logs()
            _set_up(d)
            d.serve("--workers", "2")
            d.start("worker", "worker")
        else:
            pytest.fail(f"KOPILKA_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
        yield d
    finally:
        d.stop_all()
        d.receiver.stop()
        if pg_name is not None:
            with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing step shows what the server, the worker and the commands said."""
    report = yield
    d = getattr(item, "funcargs", {}).get("day")
    if report.failed and isinstance(d, Day):
        report.sections.append(("kopilka logs (tail)", d.logs()))
    return report


@pytest.fixture(scope="module")
def running(day: Day, request: pytest.FixtureRequest) -> Iterator[None]:
    """For a module of its own after the day (whose last step stops its processes), or run
    alone with the day's server still up: the server started again when it is down (with a
    worker on PostgreSQL, as the day runs it), stopped cleanly at the module's end, and its
    log free of errors. The processes are named after the module (``serve-rewards``)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    started: list[Process] = []
    if not any(p.alive() for p in day.processes if p.name.startswith("serve")):
        if day.backend == "postgresql":
            started.append(day.serve("--workers", "2", name=f"serve-{name}"))
            started.append(day.start(f"worker-{name}", "worker"))
        else:
            started.append(day.serve(name=f"serve-{name}"))
    yield
    codes = {p.name: p.stop() for p in started}
    assert all(c in (0, -signal.SIGTERM) for c in codes.values()), (codes, day.logs())
    bad = {n: lines for n, lines in day.bad_log_lines().items() if n.endswith(f"-{name}")}
    assert bad == {}, day.logs()
