"""Fixtures of the member app's browser tests.

The application is served by uvicorn in a thread, on the test database. Playwright drives
Debian's headless Chromium from a thread of its own (``Driver``): Playwright's sync API
cannot run two instances in one thread, and the console's tests keep one open in the
main thread for the whole session. Installability needs a persistent (not incognito)
context, so each test gets a fresh profile directory.

Without Chromium the tests skip on a developer's machine but fail, saying so, when ``CI``
is set. ``KOPILKA_SCREENSHOTS=docs/screenshots`` saves the phone-size screenshots there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database

CHROMIUM = os.environ.get("KOPILKA_CHROMIUM", "/usr/bin/chromium")
ZBARIMG = shutil.which("zbarimg") or "/usr/bin/zbarimg"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}

T = TypeVar("T")


def need(tool: str, path: str, install: str) -> None:
    """Skip without ``tool`` on a developer's machine; fail in CI, where it must be."""
    if Path(path).exists():
        return
    message = f"{tool} is needed for the member app's browser tests: {path} is missing ({install})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class Driver:
    """Runs Playwright calls on its own thread: ``driver.run(fn, *args)``."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="playwright")
        self.playwright = self.pool.submit(lambda: sync_playwright().start()).result()

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return self.pool.submit(fn, *args).result(timeout=300)

    def phone(self, profile: Path, locale: str) -> Any:
        """A persistent Chromium context the size of a phone, in ``locale``."""
        return self.run(
            lambda: self.playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                args=ARGS,
                headless=True,
                locale=locale,
                viewport=PHONE,
                device_scale_factor=2,
                service_workers="allow",
            )
        )

    def close(self) -> None:
        self.pool.submit(self.playwright.stop).result(timeout=60)
        self.pool.shutdown()


@pytest.fixture(scope="module")
def driver() -> Iterator[Driver]:
    need("Chromium", CHROMIUM, "apt-get install chromium")
    d = Driver()
    try:
        yield d
    finally:
        d.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def code_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sign-in codes are written to this file (the ``file`` channel)."""
    path = tmp_path / "codes.log"
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_CHANNEL", "file")
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_FILE", str(path))
    reset_settings_cache()
    yield path
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def app_server(db: Database, code_file: Path) -> Iterator[str]:
    """The whole application on a free local port (127.0.0.1 is a secure context, so
    service workers and WebCrypto work without TLS)."""
    import uvicorn

    from kopilka.main import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:  # pragma: no cover
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot of the page when ``KOPILKA_SCREENSHOTS`` names a folder."""
    where = os.environ.get("KOPILKA_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / name))


def zbar(png: Path) -> list[str]:
    """What zbar reads in an image (``QR-Code:…`` lines, the type stripped)."""
    need("zbarimg", ZBARIMG, "apt-get install zbar-tools")
    done = subprocess.run(
        [ZBARIMG, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return [line for line in done.stdout.splitlines() if line]
