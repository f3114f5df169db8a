"""The Referrals screen in headless Chromium, in Russian: the dashboard of the known set
(tests/referrals/dataset.py) drawn, its CSV downloaded, and a manager rejecting one
flagged referral with a reason and approving the other. ``KOPILKA_SCREENSHOTS`` saves
docs/screenshots/console-referrals.png."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from kopilka.core.db import Database
from kopilka.users.service import create_user
from tests.conftest import Clock
from tests.e2e.console_support import browser, live_server, screenshot_path  # noqa: F401
from tests.referrals import dataset
from tests.referrals.conftest import Enrol

pytestmark = pytest.mark.e2e

EMAIL = "manager@example.com"
PASSWORD = "a long console password"


def test_the_referrals_screen_in_russian(
    client: TestClient,
    db: Database,
    admin: dict[str, str],
    enrol: Enrol,
    referrals: Clock,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    # given the known set and a manager
    dataset.make(client, db, admin, enrol, referrals)
    with db.session() as s:
        create_user(s, EMAIL, "manager", PASSWORD)
        s.commit()
    context = browser.new_context(locale="ru-RU", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server}/admin/login")
    page.get_by_test_id("email").fill(EMAIL)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    # when they open Referrals from the menu and pick three weeks
    page.get_by_test_id("nav-referrals").click()
    page.get_by_test_id("from").fill("2026-11-30")
    page.get_by_test_id("to").fill("2026-12-20")
    page.get_by_test_id("apply-filters").click()
    # then the funnel is drawn, with the figures of the set
    expect(page.get_by_role("heading", name="Рефералы", exact=True)).to_be_visible()
    funnel = page.get_by_test_id("chart-referral-funnel")
    expect(funnel).to_be_visible()
    assert funnel.locator("rect.bar").count() == 12
    expect(page.get_by_test_id("kpi-joined").locator("strong")).to_have_text("5")
    expect(page.get_by_test_id("referral-cost-total")).to_have_text("185,00")
    expect(page.get_by_test_id("referral-outcomes")).to_contain_text("приглашение самого себя")
    queue = page.get_by_test_id("review-queue").locator("tr[data-referral]")
    expect(queue).to_have_count(2)
    expect(queue.first).to_contain_text("много друзей одного участника за день")
    if path := screenshot_path("console-referrals.png"):
        page.screenshot(path=path, full_page=True)
    # and the CSV downloads, for Russian Excel
    with page.expect_download() as download:
        page.get_by_test_id("csv-referrals").click()
    assert download.value.suggested_filename == "kopilka-referrals-2026-11-30-2026-12-20.csv"
    with open(download.value.path(), "rb") as f:
        assert f.read().startswith("\ufeffweek;week_start;".encode())
    # when the manager rejects Sasha with a reason and approves Lena
    sasha = queue.filter(has_text="Саша Белов")
    sasha.get_by_test_id("reject-reason").fill("Тот же человек, что и пригласивший")
    sasha.get_by_test_id("reject").click()
    expect(page.get_by_test_id("done")).to_have_text("Реферал отклонён.")
    expect(queue).to_have_count(1)
    queue.filter(has_text="Елена Кузнецова").get_by_test_id("approve").click()
    # then the queue is empty
    expect(page.get_by_test_id("done")).to_have_text("Реферал одобрен.")
    expect(page.get_by_test_id("nothing-to-review")).to_be_visible()
    assert errors == []
    context.close()
