"""The console's Rewards screen: the catalogue with stock taken and left, the newest claims
(of one reward or all); who may see it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.console.test_console import make_user, sign_in
from tests.rewards.conftest import TOWEL, Enrol, receipt

RU = {"Accept-Language": "ru-RU,ru;q=0.9"}


def test_the_rewards_screen_shows_the_catalogue_stock_and_claims(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a towel sold at the till
    m = enrol("30")
    r = client.post(
        "/api/v1/purchases", json=receipt("R-1", m["card_number"], TOWEL), headers=admin
    )
    assert r.status_code == 201, r.text
    # when an analyst opens Rewards in Russian
    sign_in(client, make_user(db, "analyst", "analyst@example.com"))
    page = client.get("/admin/rewards", headers=RU)
    # then both rewards are listed with what is taken and left, and the claim
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="nav-rewards"' in html and "Награды" in html
    towel = re.search(r'<tr data-testid="reward-row" data-code="towel-1r">(.*?)</tr>', html, re.S)
    assert towel is not None
    assert re.findall(r'data-testid="reward-(?:taken|left)">([^<]+)<', towel.group(1)) == ["1", "4"]
    assert "Полотенце за 1 ₽" in towel.group(1) and "на кассе: TOWEL-01" in towel.group(1)
    assert html.count('data-testid="claim-row"') == 1
    assert "получена" in html and "строка чека 1" in html
    # and filtered to the coffee, no claim
    assert client.get("/admin/rewards?reward=coffee").text.count('data-testid="claim-row"') == 0


def test_the_rewards_screen_is_for_staff_who_see_members(
    client: TestClient, db: Database, enrol: Enrol
) -> None:
    # a cashier-like console role does not exist; an unauthenticated visitor is sent to sign in
    r = client.get("/admin/rewards", follow_redirects=False)
    assert r.status_code in (302, 303) and "/admin/login" in r.headers["location"]
