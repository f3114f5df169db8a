"""The rewards catalogue on the real server processes (``kopilka serve`` and, on
PostgreSQL, a worker): the catalogue listed, a towel sold at the till for 1 ₽ and 300
BONUS and returned, a coffee coupon claimed with an Idempotency-Key, the last towels not
oversold. Runs after the day's steps, which end by stopping the processes: its own
server then (its own members; the programme's ``rewards:``)."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from typing import Any

import httpx
import pytest

from tests.server.conftest import Day

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


def ok(response: httpx.Response, status: int) -> Any:
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} → {response.status_code}: {response.text}"
    )
    return response.json()


# the day's last step stops its processes: the server again, for this module
pytestmark = [pytest.mark.server, pytest.mark.usefixtures("running")]


@pytest.fixture
def http(day: Day) -> Any:
    with day.client() as c:
        yield c


def _member(day: Day, http: httpx.Client, phone: str, bonus: str) -> dict[str, Any]:
    m = ok(http.post("/api/v1/members", headers=day.till, json={"phone": phone}), 201)
    ok(
        http.post(
            f"/api/v1/members/{m['id']}/adjustments",
            headers=day.admin,
            json={"currency": "BONUS", "amount": bonus, "reason": "rewards test"},
        ),
        201,
    )
    return dict(m)


def _bonus(day: Day, http: httpx.Client, member: dict[str, Any]) -> str:
    body = ok(http.get(f"/api/v1/members/{member['id']}/balances", headers=day.admin), 200)
    return str(next(b["available"] for b in body["balances"] if b["currency"] == "BONUS"))


def _towel_receipt(external_id: str, card: str) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "member": {"card": card},
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": dt.datetime.now(MSK).replace(microsecond=0).isoformat(),
        "lines": [
            {"sku": "TOWEL-01", "quantity": "1", "unit_price": "499.00", "reward": "towel-1r"}
        ],
    }


def _stock(day: Day, http: httpx.Client, code: str) -> Any:
    items = ok(http.get("/api/v1/rewards", headers=day.till), 200)["items"]
    return next(i["stock_left"] for i in items if i["code"] == code)


def test_the_catalogue_is_listed_with_its_stock(day: Day, http: httpx.Client) -> None:
    items = ok(http.get("/api/v1/rewards", headers=day.till), 200)["items"]
    assert [(i["code"], i["kind"], i["stock_left"]) for i in items] == [
        ("towel-1r", "till", 2),
        ("coffee", "coupon", None),
    ]


def test_a_towel_sold_at_the_till_and_returned(day: Day, http: httpx.Client) -> None:
    # given a member with 400 BONUS
    m = _member(day, http, "+79035550401", "400.00")
    # when the till sells the towel as the reward
    p = ok(
        http.post(
            "/api/v1/purchases", headers=day.till, json=_towel_receipt("RW-1", m["card_number"])
        ),
        201,
    )
    # then 1 ₽ is due and 300 BONUS are debited, one towel taken
    assert (p["total_due"], p["lines"][0]["reward"]) == ("1.00", "towel-1r")
    assert _bonus(day, http, m) == "100.00"
    assert _stock(day, http, "towel-1r") == 1
    # when it is returned, both come back
    ok(
        http.post(
            f"/api/v1/purchases/{p['id']}/returns",
            headers=day.till,
            json={"external_id": "RW-1-R", "lines": [{"line_no": 1, "quantity": "1"}]},
        ),
        201,
    )
    assert _bonus(day, http, m) == "400.00"
    assert _stock(day, http, "towel-1r") == 2


def test_a_coffee_coupon_claimed_once_per_key(day: Day, http: httpx.Client) -> None:
    ok(
        http.post(
            "/api/v1/coupon-pools",
            headers=day.admin,
            json={"name": "REWARD-COFFEE", "reward": {"kind": "percent", "value": "100"}},
        ),
        201,
    )
    m = _member(day, http, "+79035550402", "150.00")
    url = f"/api/v1/members/{m['id']}/rewards/coffee/claim"
    first = ok(http.post(url, headers={**day.admin, "Idempotency-Key": "coffee-1"}), 201)
    again = ok(http.post(url, headers={**day.admin, "Idempotency-Key": "coffee-1"}), 201)
    assert first == again and first["coupon_code"]
    assert _bonus(day, http, m) == "50.00"
    poor = http.post(url, headers={**day.admin, "Idempotency-Key": "coffee-2"})
    assert (poor.status_code, poor.json()["code"]) == (422, "insufficient_balance")


def test_five_tills_selling_the_last_two_towels_sell_two(day: Day, http: httpx.Client) -> None:
    # given five members with enough BONUS and two towels in stock
    members = [_member(day, http, f"+7903555050{i}", "300.00") for i in range(5)]
    barrier = threading.Barrier(len(members))
    codes: list[str] = []
    lock = threading.Lock()

    def sell(i: int, m: dict[str, Any]) -> None:
        with day.client() as c:
            barrier.wait()
            r = c.post(
                "/api/v1/purchases",
                headers=day.till,
                json=_towel_receipt(f"RW-R-{i}", m["card_number"]),
            )
        with lock:
            codes.append("sold" if r.status_code == 201 else r.json()["code"])

    threads = [threading.Thread(target=sell, args=(i, m)) for i, m in enumerate(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly two were sold; the others keep their BONUS
    assert sorted(codes) == ["reward_unavailable"] * 3 + ["sold"] * 2
    assert sorted(_bonus(day, http, m) for m in members) == ["0.00"] * 2 + ["300.00"] * 3
    assert _stock(day, http, "towel-1r") == 0
