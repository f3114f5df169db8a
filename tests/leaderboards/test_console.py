"""The console's Leaderboards screen: a board in rank order, members linked; a cashier's
role (no console) and an analyst (sees it) apart."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from tests.console.test_console import make_user, sign_in
from tests.leaderboards.conftest import Buy, Enrol, Join


def test_staff_see_a_board_with_links_to_the_members(
    client: TestClient, db: Database, enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given two members shown with their receipts, and an analyst signed in
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(anna, nickname="Аннушка")
    join(boris)
    buy("R-1", anna["card_number"], "300")
    buy("R-2", boris["card_number"], "700")
    assert sign_in(client, make_user(db, "analyst")).status_code == 303
    # when the analyst opens the screen, then the per-week board of visits
    html = client.get("/admin/leaderboards?board=spenders").text
    rows = re.findall(
        r'<tr data-testid="leaderboard-row"><td class="num">(\d+)</td><td>([^<]+)</td>\s*'
        r'<td><a href="/admin/members/([0-9a-f-]+)">',
        html,
    )
    # then it lists them in rank order, each linked to the member's page
    assert rows == [("1", "Борис С.", boris["id"]), ("2", "Аннушка", anna["id"])]
    assert 'data-testid="nav-leaderboards"' in html
    week = client.get("/admin/leaderboards?board=regulars&period=2026-W50")
    assert week.status_code == 200 and "2026-W50" in week.text
    bad = client.get("/admin/leaderboards?board=regulars&period=2026-12")
    assert bad.status_code == 422
