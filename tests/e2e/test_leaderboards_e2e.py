"""The leaderboard in headless Chromium against the real server: a member signed in on her
phone (Russian) opens the leaderboard from the tab bar, is not shown yet, takes part under
a nickname and finds her place highlighted; another member (English) sees the same board
in English with his own place. Makes ``docs/screenshots/app-leaderboard.png`` (Russian)
and ``app-leaderboard-en.png`` (390x844) when ``KOPILKA_SCREENSHOTS`` names a folder."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from kopilka.core.db import Database, now
from kopilka.leaderboards import service as leaderboards
from kopilka.members import service as members
from kopilka.members.schemas import MemberCreate
from tests.conftest import KeyFactory
from tests.e2e.app_support import (  # noqa: F401 - fixtures
    Driver,
    app_server,
    code_file,
    driver,
    screenshot,
)
from tests.leaderboards.conftest import LEADERBOARD_PROGRAM, apply

pytestmark = [pytest.mark.e2e]


def _member(db: Database, phone: str, name: str, nickname: str | None = None) -> Any:
    with db.session() as s:
        m = members.create_member(s, MemberCreate(phone=phone, name=name), "RU")
        if nickname is not None:
            leaderboards.set_player(s, m.id, True, nickname)
        s.commit()
        return m.id, m.card_number


def _buy(base: str, admin: dict[str, str], card: str, amount: str, n: int) -> None:
    at = (now() - dt.timedelta(minutes=5 + n)).isoformat()
    body = {
        "external_id": f"E2E-{n}",
        "store": "msk-01",
        "occurred_at": at,
        "member": {"card": card},
        "lines": [{"sku": "SKU-1", "quantity": "1", "unit_price": amount}],
    }
    r = httpx.post(f"{base}/api/v1/purchases", json=body, headers=admin)
    assert r.status_code == 201, r.text


def test_a_member_takes_part_and_sees_her_place_in_russian_and_english(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
) -> None:
    base = app_server
    apply(db, LEADERBOARD_PROGRAM)
    admin, cashier = auth("admin"), auth("cashier")
    # given Olga (not shown yet), Boris and Vera shown, and their month's receipts
    olga_id, olga_card = _member(db, "+79161234567", "Ольга Смирнова")
    boris_id, boris_card = _member(db, "+79161234568", "Boris Ivanov", "Boris_the_Buyer")
    _vera_id, vera_card = _member(db, "+79161234569", "Вера Орлова", "Вера")
    for n, (card, amount) in enumerate(
        [(olga_card, "1500"), (boris_card, "900"), (vera_card, "2500")]
    ):
        _buy(base, admin, card, amount, n)

    def sign_in(member_id: uuid.UUID, locale: str) -> Any:
        link = httpx.post(f"{base}/api/v1/members/{member_id}/app-link", headers=cashier).json()
        phone = driver.phone(tmp_path / str(member_id), locale)

        def open_board() -> Any:
            page = phone.pages[0] if phone.pages else phone.new_page()
            page.goto(link["url"])
            page.wait_for_url(f"{base}/app/")
            page.get_by_test_id("nav-games").click()
            page.wait_for_url(f"{base}/app/challenges")
            page.get_by_test_id("nav-leaderboard").click()
            page.wait_for_url(f"{base}/app/leaderboard")
            return page

        return driver.run(open_board)

    # when Olga opens the leaderboard from the tab bar (Russian)
    page = sign_in(olga_id, "ru-RU")

    def before() -> dict[str, Any]:
        return {
            "name": page.get_by_test_id("leaderboard-name").inner_text(),
            "mine": page.get_by_test_id("my-rank").inner_text(),
            "rows": page.get_by_test_id("leaderboard-row").all_inner_texts(),
        }

    seen = driver.run(before)
    # then she is not on it yet: only Vera and Boris, who took part
    assert seen["name"] == "Щедрые"
    assert seen["mine"] == "Вас нет в рейтингах. Включите участие, чтобы увидеть своё место."
    assert [r.split("\t") for r in seen["rows"]] == [
        ["1", "Вера", "2\xa0500,00\xa0₽"],
        ["2", "Boris_the_Buyer", "900,00\xa0₽"],
    ]

    # when she takes part under a nickname
    def take_part() -> dict[str, Any]:
        page.get_by_test_id("leaderboard-opt-in").check()
        page.get_by_test_id("leaderboard-nickname").fill("Оля К")
        page.get_by_test_id("leaderboard-save").click()
        expect(page.locator("tr.mine")).to_be_visible()
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "app-leaderboard.png")
        return {
            "mine": page.get_by_test_id("my-rank").inner_text(),
            "highlighted": page.locator("tr.mine").inner_text(),
            "rows": page.get_by_test_id("leaderboard-row").count(),
            "shown_as": page.get_by_test_id("leaderboard-shown-as").inner_text(),
        }

    seen = driver.run(take_part)
    # then her place is highlighted, second, under her nickname
    assert seen["mine"] == "Вы на 2-м месте: 1\xa0500,00\xa0₽."
    assert seen["highlighted"].split("\t") == ["2", "Оля К вы", "1\xa0500,00\xa0₽"]
    assert seen["rows"] == 3
    assert seen["shown_as"] == "Вас видят как Оля К"

    # when Boris opens the same board on his phone in English
    en = sign_in(boris_id, "en-US")

    def english() -> dict[str, Any]:
        screenshot(en, "app-leaderboard-en.png")
        return {
            "heading": en.get_by_role("heading", level=1).inner_text(),
            "name": en.get_by_test_id("leaderboard-name").inner_text(),
            "period": en.get_by_test_id("leaderboard-period").inner_text(),
            "mine": en.get_by_test_id("my-rank").inner_text(),
            "highlighted": en.locator("tr.mine").inner_text(),
        }

    seen = driver.run(english)
    # then it is in English, his own place highlighted
    month = now().astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%Y-%m")
    assert (seen["heading"], seen["name"]) == ("Leaderboard", "Big spenders")
    assert seen["period"] == f"Money spent · This month, {month}"
    assert seen["mine"] == "You are number 3 with RUB\xa0900.00."
    assert seen["highlighted"].split("\t") == ["3", "Boris_the_Buyer you", "RUB\xa0900.00"]
