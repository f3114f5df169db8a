"""Challenges and badges in headless Chromium against the real server: a member signed in on
her phone sees a weekly challenge's progress bar move when the till confirms a purchase
over the API ("2 из 5" → "3 из 5"), takes part in an opt-in one, sees the notice of a
completion once on the home screen, and the badge wall (earned and not yet) in Russian and
English. Makes ``docs/screenshots/app-challenges.png`` and ``app-badges.png`` (390x844,
Russian)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from kopilka.core.db import Database
from kopilka.members import service as members
from kopilka.members.schemas import MemberCreate
from tests.challenges.conftest import CHALLENGE_PROGRAM, apply
from tests.conftest import KeyFactory
from tests.e2e.app_support import (  # noqa: F401 - fixtures
    Driver,
    app_server,
    code_file,
    driver,
    screenshot,
)

pytestmark = [pytest.mark.e2e]


def _member(db: Database) -> tuple[uuid.UUID, str]:
    with db.session() as s:
        member = members.create_member(
            s, MemberCreate(phone="+79161234567", name="Ольга Смирнова"), "RU"
        )
        s.commit()
        return member.id, member.card_number


def _buy(base: str, h: dict[str, str], ext: str, card: str) -> None:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    body: dict[str, Any] = {
        "external_id": ext,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": at,
        "member": {"card": card},
        "lines": [{"sku": "LATTE", "category": "coffee", "quantity": "1", "unit_price": "200"}],
    }
    r = httpx.post(f"{base}/api/v1/purchases", json=body, headers=h)
    assert r.status_code == 201, r.text


def test_a_till_purchase_moves_the_progress_bar_and_the_badge_wall_shows_in_ru_and_en(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    code_file: Path,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
) -> None:
    base = app_server
    apply(db, CHALLENGE_PROGRAM)
    cashier, admin = auth("cashier"), auth("admin")
    member_id, card = _member(db)
    link = httpx.post(f"{base}/api/v1/members/{member_id}/app-link", headers=cashier).json()
    for k in range(2):
        _buy(base, cashier, f"R-{k}", card)
    phone = driver.phone(tmp_path / "phone", "ru-RU")
    page = driver.run(lambda: phone.pages[0] if phone.pages else phone.new_page())

    def coffee() -> Any:
        return page.locator('[data-testid="challenge"][data-code="five-coffees"]')

    # given her phone signed in, on the challenges screen from the tab bar
    def open_challenges() -> dict[str, Any]:
        page.goto(link["url"])
        page.wait_for_url(f"{base}/app/")
        page.get_by_test_id("nav-challenges").click()
        page.wait_for_url(f"{base}/app/challenges")
        card_ = coffee()
        return {
            "name": card_.get_by_test_id("challenge-name").inner_text(),
            "progress": card_.get_by_test_id("challenge-progress").inner_text(),
            "bar": card_.get_by_test_id("challenge-bar").get_attribute("value"),
            "left": card_.get_by_test_id("challenge-left").inner_text(),
        }

    seen = driver.run(open_challenges)
    assert (seen["name"], seen["progress"], seen["bar"]) == ("Пять кофе за неделю", "2 из 5", "40")
    assert seen["left"].startswith("Осталось: ")

    # when the till confirms a third coffee
    _buy(base, cashier, "R-2", card)

    def reread() -> tuple[str, str | None]:
        page.reload()
        return (
            coffee().get_by_test_id("challenge-progress").inner_text(),
            coffee().get_by_test_id("challenge-bar").get_attribute("value"),
        )

    # then the progress bar moved
    assert driver.run(reread) == ("3 из 5", "60")

    # when she takes part in the opt-in challenge
    def take_part() -> str:
        recycle = page.locator('[data-testid="challenge"][data-code="recycle"]')
        recycle.get_by_test_id("join").click()
        page.wait_for_load_state("load")
        expect(recycle.get_by_test_id("join")).to_have_count(0)
        screenshot(page, "app-challenges.png")
        return recycle.get_by_test_id("challenge-progress").inner_text()

    assert driver.run(take_part) == "0 из 2"

    # when two more coffees complete the week's challenge
    for k in (3, 4):
        _buy(base, cashier, f"R-{k}", card)

    def home_twice() -> tuple[list[str], int]:
        page.goto(f"{base}/app/")
        first = page.get_by_test_id("challenge-notice").all_inner_texts()
        page.reload()
        return first, page.get_by_test_id("challenge-notice").count()

    # then the home screen says so, once
    assert driver.run(home_twice) == (["Задание выполнено: «Пять кофе за неделю»!"], 0)

    # and the badge wall shows the badge earned, and the others not yet
    r = httpx.post(
        f"{base}/api/v1/members/{member_id}/badges",
        json={"badge": "eco", "reason": "brought clothes"},
        headers=admin,
    )
    assert r.status_code == 201, r.text

    def wall() -> dict[str, Any]:
        page.goto(f"{base}/app/badges")
        badges = page.get_by_test_id("badge")
        out = {
            "names": badges.get_by_test_id("badge-name").all_inner_texts(),
            "earned": badges.get_by_test_id("badge-earned").all_inner_texts(),
            "count": page.get_by_test_id("badges-count").inner_text(),
        }
        screenshot(page, "app-badges.png")
        return out

    ru = driver.run(wall)
    assert ru["names"][:2] in (["Кофеман", "Эко"], ["Эко", "Кофеман"])
    assert ru["names"][2:] == ["Завсегдатай", "Посол"]
    assert ru["earned"][0].startswith("Получен ") and ru["earned"][1].startswith("Получен ")
    assert ru["earned"][2:] == ["Ещё нет", "Ещё нет"]
    assert ru["count"] == "Получено 2 из 4"

    def in_english() -> dict[str, Any]:
        page.goto(f"{base}/app/lang/en?next=/app/badges")
        page.wait_for_url(f"{base}/app/badges")
        badges = page.get_by_test_id("badge")
        return {
            "names": badges.get_by_test_id("badge-name").all_inner_texts(),
            "earned": badges.get_by_test_id("badge-earned").all_inner_texts(),
            "count": page.get_by_test_id("badges-count").inner_text(),
        }

    en = driver.run(in_english)
    assert en["names"][2:] == ["Regular", "Ambassador"]
    assert set(en["names"][:2]) == {"Coffee lover", "Eco"}
    assert en["earned"][0].startswith("Earned ")
    assert en["earned"][2:] == ["Not yet", "Not yet"]
    assert en["count"] == "2 of 4 earned"
    driver.run(phone.close)
