"""The console in headless Chromium: sign in with TOTP, find a member by phone, adjust the
balance with a reason (seen in the ledger and the audit log), simulate and publish a rule,
and the dashboards drawn from demo data."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from kopilka.core.db import Database
from kopilka.users.models import User
from kopilka.users.service import create_user
from tests.e2e.console_support import browser, live_server, screenshot_path  # noqa: F401

pytestmark = pytest.mark.e2e

EMAIL = "manager@example.com"
PASSWORD = "a long console password"


def _user(db: Database, role: str = "admin", totp: str | None = None) -> None:
    with db.session() as s:
        user = create_user(s, EMAIL, role, PASSWORD)
        if totp:
            user.totp_secret = totp  # stored encrypted
        s.commit()


def _demo(db: Database, members: int) -> None:
    from kopilka.demo.seed import demo_program_text, seed_history, seed_members
    from kopilka.program import service as program

    with db.session() as s:
        program.apply_program(s, program.parse_program(demo_program_text()), actor="test")
        s.commit()
    program.invalidate_cache()
    seed_members(members, seed=3)
    seed_history(seed=5)
    from kopilka.reports.jobs import run_rollup

    run_rollup(full=True, settle_seconds=0)


def _sign_in(page: Page, base: str, totp: str | None = None) -> None:
    page.goto(f"{base}/admin/members")
    page.get_by_test_id("email").fill(EMAIL)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    if totp:
        expect(page.get_by_test_id("totp-code")).to_be_visible()
        page.get_by_test_id("totp-code").fill(pyotp.TOTP(totp).now())
        page.get_by_test_id("totp-submit").click()
    expect(page.get_by_test_id("search-input")).to_be_visible()


def test_totp_sign_in_find_by_phone_adjust_and_audit(
    db: Database,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    from kopilka.members.schemas import MemberCreate
    from kopilka.members.service import create_member
    from kopilka.program import service as program
    from tests.conftest import TEST_PROGRAM

    with db.session() as s:
        program.apply_program(s, program.parse_program(TEST_PROGRAM), actor="test")
        s.commit()
        create_member(s, MemberCreate(phone="+79031112233", name="Ольга Смирнова"), "RU")
        s.commit()
    program.invalidate_cache()
    secret = pyotp.random_base32()
    _user(db, "support", totp=secret)
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # a wrong code first: refused, and nothing is signed in
    page.goto(f"{live_server}/admin/members")
    page.get_by_test_id("email").fill(EMAIL)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("totp-code").fill("000000")
    page.get_by_test_id("totp-submit").click()
    expect(page.get_by_test_id("totp-error")).to_contain_text("Wrong one-time code")
    page.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).now())
    page.get_by_test_id("totp-submit").click()
    expect(page.get_by_test_id("search-input")).to_be_visible()

    page.get_by_test_id("search-input").fill("8 903 111-22-33")
    page.get_by_test_id("search").click()
    expect(page.get_by_test_id("member-name")).to_contain_text("Ольга Смирнова")
    expect(page.get_by_test_id("balance")).to_have_text("0.00")

    page.get_by_test_id("adjust-amount").fill("250.00")
    page.get_by_test_id("adjust-reason").fill("Receipt lost at the till, checked by phone")
    page.get_by_test_id("adjust-submit").click()
    expect(page.get_by_test_id("done")).to_have_text("Balance adjusted.")
    expect(page.get_by_test_id("balance")).to_have_text("250.00")
    ledger = page.get_by_test_id("ledger")
    expect(ledger).to_contain_text("Receipt lost at the till, checked by phone")
    expect(ledger.locator("tr.kind-adjust")).to_have_count(1)
    if path := screenshot_path("member.png"):
        page.screenshot(path=path, full_page=True)

    # support may not read the audit log; an admin sees the adjustment there
    context.close()
    with db.session() as s:
        s.execute(update(User).values(role="admin"))
        s.commit()
    time.sleep(1.0)  # the TOTP code above is spent; the next one is in the same step
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/admin/login")
    page.get_by_test_id("email").fill(EMAIL)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    step = int(time.time()) // 30
    page.get_by_test_id("totp-code").fill(pyotp.TOTP(secret).at((step + 1) * 30))
    page.get_by_test_id("totp-submit").click()
    page.goto(f"{live_server}/admin/audit?action=ledger.adjust")
    row = page.get_by_test_id("audit-log").locator("tr[data-action='ledger.adjust']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Receipt lost at the till, checked by phone")
    expect(row).to_contain_text("250.00")
    context.close()


def test_simulate_then_publish_a_rule(
    db: Database,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    from kopilka.program import service as program
    from tests.conftest import TEST_PROGRAM

    with db.session() as s:
        program.apply_program(s, program.parse_program(TEST_PROGRAM), actor="test")
        s.commit()
    program.invalidate_cache()
    _user(db, "manager")
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    _sign_in(page, live_server)
    page.get_by_test_id("nav-programme").click()
    draft = page.get_by_test_id("programme-draft")
    draft.fill(draft.input_value().replace("percent: '5'", "percent: '8'"))
    page.get_by_test_id("programme-receipt").fill(
        '{"store": "msk-01", "member": {}, "lines": '
        '[{"sku": "TEA", "quantity": "2", "unit_price": "150.00"}]}'
    )
    page.get_by_test_id("simulate").click()
    expect(page.get_by_test_id("rule-fired")).to_contain_text("Base earn — earn: 24.00 BONUS")
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("done")).to_have_text("Programme applied: version 2")
    expect(page.get_by_test_id("programme-yaml")).to_contain_text("percent: '8'")
    context.close()


@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
def test_dashboards_with_charts_from_demo_data(
    db: Database,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
    locale: str,
) -> None:
    _demo(db, 60)
    _user(db, "analyst")
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    _sign_in(page, live_server)
    page.goto(f"{live_server}/admin/dashboards?grain=week")
    heading = "Dashboards" if locale == "en-US" else "Дашборды"
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    for testid in (
        "acquisition",
        "card-share",
        "avg-receipt",
        "points-BONUS",
        "liability",
        "tier-movement",
        "campaign-cost",
        "campaign-lift",
    ):
        expect(page.get_by_test_id(f"chart-{testid}")).to_be_visible()
    expect(page.get_by_test_id("tier-matrix")).to_be_visible()
    assert page.get_by_test_id("chart-acquisition").locator("rect.bar").count() > 0
    assert page.get_by_test_id("chart-avg-receipt").locator("path.line").count() == 2
    assert page.get_by_test_id("chart-cohorts").locator("rect.cell").count() > 0
    receipts = page.get_by_test_id("kpi-card-share").locator("small").inner_text()
    assert int(re.sub(r"\D", "", receipts)) > 0
    # the legend hides and shows a series
    legend = page.locator("figure[data-panel='avg_receipt'] .legend button").first
    legend.click()
    expect(page.get_by_test_id("chart-avg-receipt").locator("g.series.hidden")).to_have_count(1)
    legend.click()
    expect(page.get_by_test_id("chart-avg-receipt").locator("g.series.hidden")).to_have_count(0)
    # every chart's data downloads as CSV
    with page.expect_download() as download:
        page.get_by_test_id("csv-points_BONUS").click()
    assert download.value.suggested_filename.startswith("kopilka-points-")
    content = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert content.splitlines()[0] == "period,currency,issued,redeemed,expired,adjusted_out"
    if path := screenshot_path(f"dashboards-{locale[:2]}.png"):
        page.screenshot(path=path, full_page=True)
    assert errors == []
    context.close()


def test_a_large_adjustment_waits_until_another_person_approves_it(
    db: Database,
    live_server: str,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    from kopilka.members.schemas import MemberCreate
    from kopilka.members.service import create_member
    from kopilka.program import service as program
    from tests.adjustments.conftest import CEILING_PROGRAM

    # given a programme whose BONUS adjustments above 10 000 need a second person, a
    # member, a support operator and a manager
    with db.session() as s:
        program.apply_program(s, program.parse_program(CEILING_PROGRAM), actor="test")
        s.commit()
        member = create_member(s, MemberCreate(phone="+79031112233", name="Ольга Смирнова"), "RU")
        s.commit()
        create_user(s, "support@example.com", "support", PASSWORD)
        create_user(s, EMAIL, "manager", PASSWORD)
        s.commit()
    program.invalidate_cache()

    def signed_in(email: str) -> Page:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{live_server}/admin/login")
        page.get_by_test_id("email").fill(email)
        page.get_by_test_id("password").fill(PASSWORD)
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_test_id("nav-members")).to_be_visible()
        return page

    # when support adjusts by 50 000
    support = signed_in("support@example.com")
    support.goto(f"{live_server}/admin/members/{member.id}")
    support.get_by_test_id("adjust-amount").fill("50000")
    support.get_by_test_id("adjust-reason").fill("Receipts of a whole month, checked")
    support.get_by_test_id("adjust-submit").click()
    # then it waits: the balance has not moved, and it is theirs, with no approve button
    expect(support.get_by_test_id("done")).to_contain_text("Sent for approval")
    expect(support.get_by_test_id("balance")).to_have_text("0.00")
    waiting = support.get_by_test_id("pending-adjustments")
    expect(waiting).to_contain_text("50,000.00 BONUS")
    expect(waiting.get_by_test_id("own-request")).to_be_visible()
    expect(waiting.get_by_test_id("approve")).to_have_count(0)
    support.context.close()
    # when the manager opens Approvals and approves it
    manager = signed_in(EMAIL)
    manager.get_by_test_id("nav-approvals").click()
    row = manager.get_by_test_id("pending-adjustments").locator("tr[data-adjustment]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Receipts of a whole month, checked")
    row.get_by_test_id("approve").click()
    # then it is posted and leaves the list; the member's balance shows it
    expect(manager.get_by_test_id("done")).to_have_text("Adjustment approved and posted.")
    expect(manager.get_by_test_id("nothing-pending")).to_be_visible()
    manager.goto(f"{live_server}/admin/members/{member.id}")
    expect(manager.get_by_test_id("balance")).to_have_text("50,000.00")
    expect(manager.get_by_test_id("ledger")).to_contain_text("Receipts of a whole month, checked")
    manager.context.close()
