"""The member app in headless Chromium: sign-in by the till's link and by a code, the card
and balance, the service worker in control, offline reload with card, balance and history,
the offline card code accepted at the till, installability, both languages, the update
flow and sign-out."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kopilka.adjustments.service import post as adjust
from kopilka.core.db import Database, now
from kopilka.memberapp import service as app_service
from kopilka.memberapp.models import MemberDevice
from kopilka.members import service as members
from kopilka.members.schemas import MemberCreate
from kopilka.web.app import views
from tests.conftest import KeyFactory
from tests.e2e.app_support import (  # noqa: F401 - fixtures
    Driver,
    app_server,
    code_file,
    driver,
    screenshot,
    zbar,
)
from tests.memberapp.conftest import last_code

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("program")]

PHONE = "+79161234567"
CODE = re.compile(r"^\d{16}$")


def _member(db: Database, points: str, name: str = "Ольга Смирнова") -> uuid.UUID:
    with db.session() as s:
        member = members.create_member(
            s, MemberCreate(phone=PHONE, email="olga@example.com", name=name), "RU"
        )
        s.flush()
        adjust(
            s,
            member_id=member.id,
            currency="BONUS",
            amount=Decimal(points),
            reason="Welcome bonus",
            actor="test",
            key=f"welcome-{member.id}",
        )
        s.commit()
        return member.id


def _buy(base: str, headers: dict[str, str], member: dict[str, str], external_id: str) -> Any:
    r = httpx.post(
        f"{base}/api/v1/purchases",
        json={
            "external_id": external_id,
            "member": member,
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [
                {"sku": "MILK-1L", "name": "Milk 1 l", "quantity": "2", "unit_price": "89.90"},
                {"sku": "COFFEE-250", "name": "Coffee", "quantity": "1", "unit_price": "450.00"},
            ],
        },
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _kept_pages(page: Any) -> list[str]:
    return sorted(
        page.evaluate(
            """async () => {
                const cache = await caches.open('kopilka-pages');
                return (await cache.keys()).map((r) => new URL(r.url).pathname);
            }"""
        )
    )


def _wait_for_offline_copies(page: Any) -> None:
    page.wait_for_function(
        """async () => {
            const cache = await caches.open('kopilka-pages');
            const kept = (await cache.keys()).map((r) => new URL(r.url).pathname);
            return ['/app/', '/app/history', '/app/profile'].every((p) => kept.includes(p));
        }""",
        polling=200,
        timeout=20000,
    )


def test_link_sign_in_card_offline_and_the_till(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
) -> None:
    base = app_server
    # given a member with 500 bonus roubles and a purchase, and a cashier at the till
    member_id = _member(db, "500.00")
    cashier = auth("cashier")
    _buy(base, cashier, {"id": str(member_id)}, "R-E2E-1")
    # when the till issues a one-time app link and the phone opens it (English)
    link = httpx.post(f"{base}/api/v1/members/{member_id}/app-link", headers=cashier).json()
    context = driver.phone(tmp_path / "profile", "en-US")
    page = driver.run(lambda: context.pages[0] if context.pages else context.new_page())
    violations: list[str] = []

    def sign_in() -> None:
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(link["url"])
        page.wait_for_url(f"{base}/app/")
        # then the card shows a 16-digit rotating code and the balance (500 + 31.49)
        expect(page.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        expect(page.get_by_test_id("balance")).to_have_text("531.49")
        expect(page.get_by_test_id("tier")).to_have_text("No tier yet")
        assert "#" not in page.url  # the token left the address bar

    driver.run(sign_in)

    # and the code resolves to the member, and the QR drawn on the phone reads as the code
    def read_qr() -> tuple[str, str, str]:
        before = page.get_by_test_id("card-code").inner_text()
        page.locator("#card-qr svg").screenshot(path=str(tmp_path / "qr.png"))
        after = page.get_by_test_id("card-code").inner_text()
        return before, after, page.locator("#card-qr").get_attribute("aria-label") or ""

    before, after, label = driver.run(read_qr)
    assert zbar(tmp_path / "qr.png")[0] in (before, after)
    assert label.startswith("QR code of the code ")
    with db.session() as s:
        assert app_service.resolve_card_code(s, after, now()) == member_id
        s.rollback()

    # when the service worker has installed and the page is reloaded
    def controlled() -> tuple[bool, list[Any]]:
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        expect(page.get_by_test_id("card-code")).to_have_text(CODE)
        is_controlled = page.evaluate("navigator.serviceWorker.controller !== null")
        cdp = context.new_cdp_session(page)
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        _wait_for_offline_copies(page)
        screenshot(page, "app-card.png")
        return is_controlled, errors

    is_controlled, install_errors = driver.run(controlled)
    # then the page is controlled by the service worker and the app is installable
    assert is_controlled is True
    assert install_errors == []

    # when the phone loses its connection and the app is reloaded
    def offline() -> dict[str, str]:
        context.set_offline(True)
        page.reload()
        expect(page.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        seen = {
            "code": page.get_by_test_id("card-code").inner_text(),
            "balance": page.get_by_test_id("balance").inner_text(),
            "banner": page.locator("#offline-banner").inner_text(),
        }
        page.goto(f"{base}/app/history")
        seen["history"] = page.get_by_test_id("history").inner_text()
        screenshot(page, "app-history.png")
        page.goto(f"{base}/app/")
        expect(page.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        seen["code"] = page.get_by_test_id("card-code").inner_text()
        return seen

    seen = driver.run(offline)
    # then the card, the balance and the history are still there, marked "as of"
    assert seen["balance"] == "531.49"
    assert seen["banner"].startswith("No connection. Shown as of ")
    assert "Earned" in seen["history"] and "+31.49" in seen["history"]
    assert "Adjustment" in seen["history"]
    # and the code computed offline is accepted by the purchases API at the till
    bought = _buy(base, cashier, {"qr": seen["code"]}, "R-E2E-OFFLINE")
    assert bought["member_id"] == str(member_id)

    def back_online_profile() -> None:
        context.set_offline(False)
        page.goto(f"{base}/app/profile")
        expect(page.get_by_test_id("sessions")).to_contain_text("This device")
        screenshot(page, "app-profile.png")
        context.close()

    driver.run(back_online_profile)
    assert violations == []


def test_code_sign_in_in_russian_consents_language_and_sign_out(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    code_file: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = app_server
    # given a member with 1234.50 bonus roubles
    member_id = _member(db, "1234.50")
    context = driver.phone(tmp_path / "profile", "ru-RU")
    page = driver.run(lambda: context.pages[0] if context.pages else context.new_page())

    # when a Russian phone opens the app, it is asked to sign in, in Russian
    def ask() -> str:
        page.goto(f"{base}/app/")
        page.wait_for_url(re.compile(r"/app/sign-in"))
        heading = page.get_by_role("heading", level=1).inner_text()
        screenshot(page, "app-sign-in-ru.png")
        page.get_by_test_id("destination").fill("8 916 123-45-67")
        page.get_by_test_id("send-code").click()
        expect(page.get_by_test_id("code")).to_be_visible()
        return heading

    assert driver.run(ask) == "Вход"
    # and the code sent through the channel signs it in
    code = last_code(code_file, PHONE)

    def verify() -> dict[str, str]:
        page.get_by_test_id("code").fill(code)
        page.get_by_test_id("verify").click()
        page.wait_for_url(f"{base}/app/")
        expect(page.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        screenshot(page, "app-card-ru.png")
        return {
            "balance": page.get_by_test_id("balance").inner_text(),
            "tier": page.get_by_test_id("tier").inner_text(),
            "lang": page.evaluate("document.documentElement.lang"),
        }

    seen = driver.run(verify)
    # then the balance is written the Russian way
    assert seen == {"balance": "1\xa0234,50", "tier": "Пока без уровня", "lang": "ru"}

    # when the member gives consent to email offers in the profile
    def consent() -> str:
        page.goto(f"{base}/app/profile")
        page.get_by_test_id("consent-email").check()
        page.get_by_test_id("consents-save").click()
        expect(page.get_by_test_id("consents-status")).to_have_text("Сохранено")
        return page.get_by_test_id("sessions").inner_text()

    sessions = driver.run(consent)
    # then it is recorded from the app, and the phone is listed as this device
    with db.session() as s:
        assert members.current_consents(s, member_id) == {
            "email": True,
            "sms": False,
            "push": False,
        }
        history = members.consent_history(s, member_id)
    assert history[-1]["source"] == "app" and history[-1]["text_version"] == "app-1"
    assert "Это устройство" in sessions

    # when the member switches to English
    def english() -> str:
        page.get_by_test_id("lang-en").click()
        page.wait_for_url(f"{base}/app/profile")
        return page.get_by_role("heading", level=1).inner_text()

    # then the app speaks English
    assert driver.run(english) == "Profile"

    # when the member signs out
    def sign_out() -> list[str]:
        page.get_by_test_id("sign-out").click()
        page.wait_for_url(re.compile(r"/app/sign-in"))
        kept = _kept_pages(page)
        context.close()
        return kept

    # then the session ends and the phone keeps none of the member's pages
    assert driver.run(sign_out) == []
    with db.session() as s:
        devices = list(
            s.execute(select(MemberDevice).where(MemberDevice.member_id == member_id)).scalars()
        )
    assert len(devices) == 1 and devices[0].revoked_at is not None


def test_a_new_version_is_offered_and_taken(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = app_server
    # given a phone signed in, with the app's service worker in control
    member_id = _member(db, "10.00")
    link = httpx.post(f"{base}/api/v1/members/{member_id}/app-link", headers=auth("cashier")).json()
    context = driver.phone(tmp_path / "profile", "en-US")
    page = driver.run(lambda: context.pages[0] if context.pages else context.new_page())

    def installed() -> str:
        page.goto(link["url"])
        page.wait_for_url(f"{base}/app/")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        return str(page.evaluate("caches.keys().then((k) => k.join(' '))"))

    old_caches = driver.run(installed)
    assert f"kopilka-static-{views.ASSET_VERSION}-" in old_caches
    # when a new version is deployed
    monkeypatch.setattr(views, "ASSET_VERSION", "new-version")

    def update() -> str:
        page.evaluate("navigator.serviceWorker.getRegistration('/app/').then((r) => r.update())")
        # then the app offers it, and taking it reloads the page under the new worker
        expect(page.get_by_test_id("update-reload")).to_be_visible(timeout=20000)
        with page.expect_navigation():
            page.get_by_test_id("update-reload").click()
        expect(page.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        page.wait_for_function(
            "caches.keys().then((k) => k.some((n) => n.startsWith('kopilka-static-new-version-')"
            " ) && !k.some((n) => n.startsWith('kopilka-static-') &&"
            " !n.startsWith('kopilka-static-new-version-')))",
            polling=200,
            timeout=20000,
        )
        hidden = page.get_by_test_id("update-reload").is_hidden()
        context.close()
        return "hidden" if hidden else "shown"

    assert driver.run(update) == "hidden"
