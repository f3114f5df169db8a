"""The API docs page in headless Chromium on a closed network: Swagger UI comes from Kopilka.

Regression (issue 19): ``/api/v1/docs`` loaded Swagger UI from a CDN (unpinned, without
integrity), so on a network without the Internet the page stayed blank.

Playwright runs on the ``Driver``'s thread (``app_support``): the console's tests keep a
Playwright instance open in the main thread for the whole session.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.app_support import (  # noqa: F401 - fixtures
    ARGS,
    CHROMIUM,
    Driver,
    app_server,
    code_file,
    driver,
)

pytestmark = pytest.mark.e2e


def test_the_docs_render_every_operation_with_other_hosts_blocked(
    driver: Driver,  # noqa: F811
    app_server: str,  # noqa: F811
) -> None:
    # given the operations the OpenAPI document describes
    document = httpx.get(f"{app_server}/api/v1/openapi.json", timeout=60).json()
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    )
    assert operations > 50
    ours = urlsplit(app_server).netloc

    def scenario() -> None:
        from playwright.sync_api import Route, expect

        # and a browser that may reach Kopilka and nothing else
        elsewhere: list[str] = []

        def closed_network(route: Route) -> None:
            if urlsplit(route.request.url).netloc == ours:
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort("internetdisconnected")

        browser = driver.playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            context = browser.new_context()
            context.route("**/*", closed_network)
            page = context.new_page()
            problems: list[str] = []
            failed: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            # when the docs page is opened
            page.goto(f"{app_server}/api/v1/docs")
            # then Swagger UI draws every operation of the document
            expect(page.locator(".opblock")).to_have_count(operations, timeout=60_000)
            expect(page.locator(".opblock-summary-path").first).to_be_visible()
            purchases = page.locator(".opblock-summary-path", has_text="/api/v1/purchases")
            assert purchases.count() >= 1
            assert page.title() == "Kopilka API"
            # and it asked no other host for anything, broke no CSP rule, failed no request
            assert elsewhere == []
            assert problems == []
            assert failed == []
        finally:
            browser.close()

    driver.run(scenario)
