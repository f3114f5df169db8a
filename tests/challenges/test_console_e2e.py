"""The console's challenge screens in headless Chromium against the real server, on the
known set (tests/challenges/console_dataset.py): a manager creates a challenge with the
form in Russian (a bad target named beside its field first), sees its simulation over last
week's receipts and what the programme would change, publishes it and finds it in the
list with the figures; then the same in English. ``KOPILKA_SCREENSHOTS`` saves
docs/screenshots/console-challenges.png (the list) and console-challenge-form.png (the
check)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from kopilka.core.db import Database
from kopilka.program.service import export_program
from kopilka.users.service import create_user
from tests.challenges import console_dataset as data
from tests.conftest import PINNED, Clock
from tests.e2e.console_support import browser, live_server, screenshot_path  # noqa: F401

pytestmark = pytest.mark.e2e

EMAIL = "manager@example.com"
PASSWORD = "a long console password"


@pytest.fixture
def clock_start() -> dt.datetime:
    """The known set's Saturday, not this folder's Tuesday."""
    return PINNED


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_test_id("email").fill(EMAIL)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()


def fill(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        field = page.get_by_test_id(f"f-{name}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def test_a_manager_creates_simulates_and_publishes_challenges_in_russian_and_english(
    client: TestClient,
    db: Database,
    admin: dict[str, str],
    clock: Clock,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    # given the known receipts and a manager
    data.make(client, db, admin)
    with db.session() as s:
        create_user(s, EMAIL, "manager", PASSWORD)
        s.commit()
    context = browser.new_context(locale="ru-RU", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    # (the form answered with errors is a 422 the browser reports: expected once)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, live_server)
    # when they open Challenges from the menu and start a new one
    page.get_by_test_id("nav-challenges").click()
    expect(page.get_by_role("heading", name="Задания", exact=True)).to_be_visible()
    expect(page.locator('tr[data-challenge="five-coffees"]')).to_contain_text("Три кофе за неделю")
    page.get_by_test_id("new-challenge").click()
    fill(
        page,
        code="bread-week",
        name_ru="Хлеб на неделе",
        name_en="Bread this week",
        count="purchases",
        target="1.5",
        categories="bakery",
        reward_currency="BONUS",
        reward_amount="20",
    )
    page.get_by_test_id("check").click()
    # then a target of one and a half receipts is refused beside its field
    expect(page.locator('[data-error-for="target"]')).to_contain_text("whole target")
    # when they make it one receipt and check again
    fill(page, target="1")
    page.get_by_test_id("check").click()
    # then last week's receipts say: Anna, Olga and Ivan bought bread (30,00 ₽ of points)
    sim = page.get_by_test_id("simulation")
    expect(sim).to_contain_text("Симуляция")
    expect(page.get_by_test_id("sim-eligible").locator("strong")).to_have_text("4")
    expect(page.get_by_test_id("sim-completed").locator("strong")).to_have_text("3")
    expect(page.get_by_test_id("sim-cost").locator("strong")).to_have_text("30,00")
    expect(page.get_by_test_id("diff")).to_contain_text("+- code: bread-week")
    if path := screenshot_path("console-challenge-form.png"):
        page.screenshot(path=path, full_page=True)
    # when they publish it
    page.get_by_test_id("publish").click()
    # then the list says so, and has it
    expect(page.get_by_test_id("done")).to_contain_text("Опубликовано")
    expect(page.get_by_test_id("done")).to_contain_text("2")
    expect(page.locator('tr[data-challenge="bread-week"]')).to_contain_text("Хлеб на неделе")
    # and five coffees' figures are the receipts': Anna, Boris and Olga took part,
    # Anna and Olga completed it (Olga's reward stood before her return)
    coffees = page.locator('tr[data-challenge="five-coffees"]')
    expect(coffees.get_by_test_id("joined")).to_have_text("3")
    expect(coffees.get_by_test_id("completed")).to_have_text("2")
    expect(coffees.get_by_test_id("rate")).to_have_text("66,7\u00a0%")
    expect(coffees.get_by_test_id("cost")).to_have_text("100,00")
    if path := screenshot_path("console-challenges.png"):
        page.screenshot(path=path, full_page=True)
    assert errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
    errors.clear()
    context.close()

    # when, in English, they add a monthly challenge of money paid on coffee
    context = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, live_server)
    page.get_by_test_id("nav-challenges").click()
    expect(page.get_by_role("heading", name="Challenges", exact=True)).to_be_visible()
    page.get_by_test_id("new-challenge").click()
    fill(
        page,
        code="coffee-600",
        name_ru="Кофе на 600",
        name_en="Coffee for 600",
        count="paid",
        target="600",
        categories="coffee",
        every="month",
        reward_currency="BONUS",
        reward_amount="50",
        sim_from="2026-11-01",
        sim_to="2026-11-30",
    )
    page.get_by_test_id("check").click()
    # then in November Anna and Boris (600 each, his third on the 30th) completed it;
    # Olga (400 after her return) did not
    expect(page.get_by_test_id("simulation")).to_contain_text("Simulation")
    expect(page.get_by_test_id("sim-progressed").locator("strong")).to_have_text("3")
    expect(page.get_by_test_id("sim-completed").locator("strong")).to_have_text("2")
    expect(page.get_by_test_id("sim-cost").locator("strong")).to_have_text("50.00")
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("done")).to_contain_text("Published as programme version 3")
    expect(page.locator('tr[data-challenge="coffee-600"]')).to_contain_text("Coffee for 600")
    assert errors == []
    context.close()
    with db.session() as s:
        text = export_program(s)
    assert "code: bread-week" in text and "code: coffee-600" in text
