"""Referrals in headless Chromium against the real server: a member opens the invite screen
(link, QR code, share), a friend opens the link in another browser, joins with a one-time
code and lands signed in on the card, buys at the till over the API, and the first
member's app shows the friend qualified with the reward pending until the hold ends, also
offline. Makes ``docs/screenshots/app-invite.png`` (390x844, Russian)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.dates import format_date
from playwright.sync_api import expect
from sqlalchemy import select

from kopilka.core.db import Database, now
from kopilka.members import service as members
from kopilka.members.schemas import MemberCreate
from kopilka.referrals.models import Referral, ReferralVisit
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
from tests.referrals.conftest import REFERRAL_PROGRAM, apply

pytestmark = [pytest.mark.e2e]

CODE = re.compile(r"^\d{16}$")
FRIEND = "+79035551234"


@pytest.fixture
def referral_programme(db: Database) -> Database:
    """The test programme with a ``referrals:`` section: 300 BONUS to the referrer and 200
    to the friend for a first receipt of at least 1000 within 30 days, held 14 days."""
    apply(db, REFERRAL_PROGRAM)
    return db


def _referrer(db: Database) -> tuple[uuid.UUID, str]:
    with db.session() as s:
        member = members.create_member(
            s,
            MemberCreate(phone="+79161234567", email="olga@example.com", name="Ольга Смирнова"),
            "RU",
        )
        s.commit()
        return member.id, member.referral_code


def test_a_friend_joins_from_the_invite_link_and_the_referrer_sees_the_pending_reward(
    db: Database,
    referral_programme: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    code_file: Path,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    base = app_server
    cashier = auth("cashier")
    # given a member, signed in on her phone (Russian) by the till's one-time link
    referrer_id, code = _referrer(db)
    invite_url = f"{base}/app/r/{code}"
    link = httpx.post(f"{base}/api/v1/members/{referrer_id}/app-link", headers=cashier).json()
    phone = driver.phone(tmp_path / "referrer", "ru-RU")
    page = driver.run(lambda: phone.pages[0] if phone.pages else phone.new_page())
    violations: list[str] = []

    def watch(p: Any) -> None:
        p.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )

    # when she opens the invite screen from the tab bar
    def open_invite() -> dict[str, Any]:
        watch(page)
        page.goto(link["url"])
        page.wait_for_url(f"{base}/app/")
        page.get_by_test_id("nav-invite").click()
        page.wait_for_url(f"{base}/app/invite")
        page.locator(".qr-box svg").screenshot(path=str(tmp_path / "invite-qr.png"))
        # Web Share where the browser has it (a stand-in records what would be shared)
        page.evaluate("navigator.share = async (data) => { window.__shared = data; }")
        page.get_by_test_id("share").click()
        page.wait_for_function("window.__shared !== undefined")
        shared = page.evaluate("window.__shared")
        # and the link copied where it has not
        phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page.evaluate("navigator.share = undefined")
        page.get_by_test_id("share").click()
        expect(page.get_by_test_id("share-status")).to_have_text("Ссылка скопирована")
        return {
            "link": page.get_by_test_id("invite-link").inner_text(),
            "qr_label": page.locator(".qr-box").get_attribute("aria-label"),
            "empty": page.get_by_test_id("friends-empty").inner_text(),
            "shared": shared,
            "copied": page.evaluate("navigator.clipboard.readText()"),
        }

    seen = driver.run(open_invite)
    # then it shows her link, as text and as a QR code that reads as the link
    assert seen["link"] == invite_url
    assert zbar(tmp_path / "invite-qr.png") == [invite_url]
    assert seen["qr_label"] == f"QR-код ссылки {invite_url}"
    assert seen["empty"] == "По вашей ссылке пока никто не зарегистрировался."
    # and shares it through the Web Share sheet, or copies it
    assert seen["shared"]["url"] == invite_url
    assert code in seen["shared"]["text"]
    assert seen["copied"].endswith(f" {invite_url}")

    # when a friend opens the link on another phone (English) and joins with a code
    friend_phone = driver.phone(tmp_path / "friend", "en-US")
    friend = driver.run(
        lambda: friend_phone.pages[0] if friend_phone.pages else friend_phone.new_page()
    )

    def ask_for_code() -> str:
        watch(friend)
        friend.goto(invite_url)
        heading = friend.get_by_role("heading", level=1).inner_text()
        friend.get_by_test_id("join-phone").fill("8 903 555-12-34")
        friend.get_by_test_id("join-name").fill("Иван Петров")
        friend.get_by_test_id("join-send").click()
        expect(friend.get_by_test_id("join-code")).to_be_visible()
        return heading

    assert driver.run(ask_for_code) == "You are invited to Test programme"
    sent = last_code(code_file, FRIEND)

    def join() -> str:
        friend.get_by_test_id("join-code").fill(sent)
        friend.get_by_test_id("join-verify").click()
        friend.wait_for_url(f"{base}/app/")
        expect(friend.get_by_test_id("card-code")).to_have_text(CODE, timeout=10000)
        return friend.get_by_test_id("card-code").inner_text()

    card_code = driver.run(join)
    # then the friend is a new member, enrolled from the app with the referral, signed in
    with db.session() as s:
        ref = s.execute(select(Referral)).scalar_one()
        visits = s.execute(select(ReferralVisit)).scalars().all()
    assert (ref.referrer_id, ref.status, ref.channel) == (referrer_id, "joined", "app")
    assert ref.device is not None
    assert [v.referrer_id for v in visits] == [referrer_id]

    # when the friend buys for 1500 at the till, showing the card code from the app
    r = httpx.post(
        f"{base}/api/v1/purchases",
        json={
            "external_id": "R-FRIEND-1",
            "member": {"qr": card_code},
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [{"sku": "TV-1", "name": "TV", "quantity": "1", "unit_price": "1500.00"}],
        },
        headers=cashier,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == str(ref.friend_id)
    occurred = dt.datetime.fromisoformat(r.json()["occurred_at"])
    available = format_date(
        (occurred + dt.timedelta(days=14)).astimezone(zoneinfo.ZoneInfo("Europe/Moscow")),
        "medium",
        locale="ru_RU",
    )
    driver.run(lambda: friend_phone.close())

    # then the member's invite screen shows the friend qualified, her reward pending
    def qualified() -> dict[str, str]:
        page.reload()
        page.wait_for_function(
            """async () => {
                const cache = await caches.open('kopilka-pages');
                return (await cache.keys()).some((r) => new URL(r.url).pathname === '/app/invite');
            }""",
            polling=200,
            timeout=20000,
        )
        page.reload()
        expect(page.get_by_test_id("friend-status")).to_have_text("Покупка совершена")
        screenshot(page, "app-invite.png")
        return {
            "name": page.get_by_test_id("friend-name").inner_text(),
            "status": page.get_by_test_id("friend-status").inner_text(),
            "reward": page.get_by_test_id("friend-reward").inner_text(),
        }

    assert driver.run(qualified) == {
        "name": "Иван П.",
        "status": "Покупка совершена",
        "reward": f"Станет доступно {available}: +300,00 Бонусные рубли",
    }

    # and so it does without a connection, from the service worker's copy
    def offline() -> dict[str, str]:
        phone.set_offline(True)
        page.reload()
        expect(page.get_by_test_id("friend-status")).to_have_text("Покупка совершена")
        got = {
            "reward": page.get_by_test_id("friend-reward").inner_text(),
            "banner": page.locator("#offline-banner").inner_text(),
        }
        phone.set_offline(False)
        phone.close()
        return got

    got = driver.run(offline)
    assert got["reward"].endswith("+300,00 Бонусные рубли")
    assert got["banner"].startswith("Нет сети. Данные на ")
    assert violations == []
    # and nothing in the server's log is a traceback
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
