"""Leaderboards through the real server (and, on PostgreSQL, its worker): two members opt
in over the API, buy at the till, and the board ranks them; a return takes back what it
refunded; a member who opts out leaves the board at once. Runs after the day's steps
(``test_day.py``), which stop the processes: on the server started again for it
(``running``), with members of its own."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.server.conftest import Day

# the day's last step stops its processes: the server again, for this module
pytestmark = [pytest.mark.server, pytest.mark.usefixtures("running")]


def ok(response: httpx.Response, status: int) -> Any:
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} → {response.status_code}: {response.text}"
    )
    return response.json()


@pytest.fixture
def http(day: Day) -> Any:
    with day.client() as c:
        yield c


def test_members_who_opt_in_are_ranked_and_a_return_takes_back(
    day: Day, http: httpx.Client
) -> None:
    # given two new members who opt in, Gleb under a nickname
    people = {}
    for name, phone in (("Глеб Орлов", "+79169990001"), ("Дина Лис", "+79169990002")):
        m = ok(
            http.post("/api/v1/members", headers=day.till, json={"phone": phone, "name": name}), 201
        )
        people[name.split()[0]] = m
    gleb, dina = people["Глеб"], people["Дина"]
    ok(
        http.put(
            f"/api/v1/members/{gleb['id']}/leaderboard",
            headers=day.admin,
            json={"opted_in": True, "nickname": "Gleb_Top"},
        ),
        200,
    )
    ok(
        http.put(
            f"/api/v1/members/{dina['id']}/leaderboard",
            headers=day.admin,
            json={"opted_in": True},
        ),
        200,
    )
    # when each buys at the till (Gleb two lines, Dina one)
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).isoformat()

    def buy(ext: str, member: dict[str, Any], *prices: str) -> Any:
        lines = [{"sku": f"LB-{i}", "quantity": "1", "unit_price": p} for i, p in enumerate(prices)]
        body = {
            "external_id": ext,
            "store": "msk-01",
            "occurred_at": at,
            "member": {"card": member["card_number"]},
            "lines": lines,
        }
        return ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)

    purchase = buy("LB-1", gleb, "3000.00", "1000.00")
    buy("LB-2", dina, "3500.00")
    # then the month's board ranks them, and Dina sees her own place
    board = ok(
        http.get(f"/api/v1/leaderboards/month-spend?member={dina['id']}", headers=day.admin),
        200,
    )
    shown = [(i["rank"], i["display_name"], i["value"]) for i in board["items"]]
    assert shown[:2] == [(1, "Gleb_Top", "4000.00"), (2, "Дина Л.", "3500.00")]
    assert board["member"] == {"rank": 2, "value": "3500.00"}
    visits = ok(http.get("/api/v1/leaderboards/store-visits?store=msk-01", headers=day.admin), 200)
    assert [(i["display_name"], i["value"]) for i in visits["items"]] == [
        ("Gleb_Top", "1"),
        ("Дина Л.", "1"),
    ]
    # when Gleb returns his 1000.00 line
    ok(
        http.post(
            f"/api/v1/purchases/{purchase['id']}/returns",
            headers=day.till,
            json={"external_id": "LB-RET-1", "lines": [{"line_no": 2, "quantity": "1"}]},
        ),
        201,
    )
    # then the board takes it back and Dina is first
    board = ok(http.get("/api/v1/leaderboards/month-spend", headers=day.admin), 200)
    assert [(i["rank"], i["display_name"], i["value"]) for i in board["items"]][:2] == [
        (1, "Дина Л.", "3500.00"),
        (2, "Gleb_Top", "3000.00"),
    ]
    # when Dina opts out, she leaves the board at once
    ok(
        http.put(
            f"/api/v1/members/{dina['id']}/leaderboard",
            headers=day.admin,
            json={"opted_in": False},
        ),
        200,
    )
    board = ok(
        http.get(f"/api/v1/leaderboards/month-spend?member={gleb['id']}", headers=day.admin), 200
    )
    assert [(i["rank"], i["display_name"]) for i in board["items"]] == [(1, "Gleb_Top")]
    assert board["member"] == {"rank": 1, "value": "3000.00"}
