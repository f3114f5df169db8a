"""The sticker card in headless Chromium against the real server: a member with 17
stickers sees "17 из 30" toward the towel (shown at the till) and claims the free coffee
from the app (a coupon code appears, the card then says 7); the same card in English.
Makes ``docs/screenshots/app-stickers.png`` and ``app-stickers-en.png`` (390x844)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from kopilka.core.db import Database
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
from tests.rewards.conftest import apply, seed

pytestmark = [pytest.mark.e2e]


def _member(db: Database) -> uuid.UUID:
    with db.session() as s:
        member = members.create_member(
            s, MemberCreate(phone="+79161230017", name="Ольга Смирнова"), "RU"
        )
        s.commit()
        return member.id


def test_the_sticker_card_in_russian_and_english_and_a_coupon_claimed(
    db: Database,
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    auth: KeyFactory,
    tmp_path: Path,
) -> None:
    base = app_server
    admin, cashier = auth("admin"), auth("cashier")
    # given the sticker programme, the coffee pool, and a member with 17 stickers
    apply(db)
    r = httpx.post(
        f"{base}/api/v1/coupon-pools",
        json={"name": "FREE-COFFEE", "reward": {"kind": "percent", "value": "100"}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    member_id = _member(db)
    seed(db, str(member_id), "17")

    def open_card(locale: str, name: str) -> Any:
        link = httpx.post(f"{base}/api/v1/members/{member_id}/app-link", headers=cashier).json()
        phone = driver.phone(tmp_path / locale, locale)

        def go() -> dict[str, Any]:
            page = phone.pages[0] if phone.pages else phone.new_page()
            page.goto(link["url"])
            page.wait_for_url(f"{base}/app/")
            page.get_by_test_id("nav-games").click()
            page.wait_for_url(f"{base}/app/challenges")
            page.get_by_test_id("nav-stickers").click()
            page.wait_for_url(f"{base}/app/stickers")
            rewards = page.get_by_test_id("reward")
            seen = {
                "balance": page.get_by_test_id("sticker-balance").inner_text(),
                "names": rewards.locator("[data-testid=reward-name]").all_inner_texts(),
                "progress": page.get_by_test_id("reward-progress").all_inner_texts(),
                "till": page.get_by_test_id("reward-till").inner_text(),
                "stock": page.get_by_test_id("reward-stock").all_inner_texts(),
            }
            screenshot(page, name)
            return seen

        return phone, go

    # when she opens the sticker card in Russian
    phone, go = open_card("ru-RU", "app-stickers.png")
    seen = driver.run(go)
    # then 17 of 30 toward the towel, enough for the coffee (10 of 10), and what each buys
    assert seen["balance"] == "17"
    assert seen["names"] == ["Полотенце за 1 ₽", "Кофе в подарок"]
    assert seen["progress"] == ["17 из 30", "10 из 10"]
    assert seen["till"].startswith("Покажите карту на кассе: TOWEL-01 за 1,00")
    assert seen["stock"] == ["Осталось: 5", "Осталось: 3"]

    # when she claims the coffee
    def claim() -> dict[str, str]:
        page = phone.pages[0]
        page.get_by_test_id("reward-claim").click()
        status = page.locator("[data-code=coffee] [data-testid=reward-status]")
        expect(status).to_contain_text("Ваш купон: ")
        text = status.inner_text()
        page.reload()
        return {"status": text, "balance": page.get_by_test_id("sticker-balance").inner_text()}

    claimed = driver.run(claim)
    driver.run(lambda: phone.close())
    # then a code is shown and 10 stickers are gone
    code = claimed["status"].removeprefix("Ваш купон: ")
    coupons = httpx.get(f"{base}/api/v1/members/{member_id}/coupons", headers=admin).json()
    assert [c["code"] for c in coupons["items"]] == [code]
    assert claimed["balance"] == "7"

    # and in English the card reads the same way
    phone, go = open_card("en-US", "app-stickers-en.png")
    seen = driver.run(go)
    driver.run(lambda: phone.close())
    assert seen["balance"] == "7"
    assert seen["names"] == ["Towel for 1 RUB", "A free coffee"]
    assert seen["progress"] == ["7 of 30", "7 of 10"]
    assert seen["stock"] == ["5 left", "2 left"]
    assert Decimal(seen["balance"]) == 7
