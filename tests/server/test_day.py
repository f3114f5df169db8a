"""A user's day through the real server (issue 19): each test is one step of the day, in
order, against the processes of ``conftest.day``, over HTTP as tills, the console, the
member app and a webhook receiver meet it. Figures are the contract's (its worked example
for Anna); a step that needs what an earlier one made says so if that step failed.

Members: Anna (phone and email) redeems "max" and returns her milk in two returns; Boris
(email only) redeems an amount, holds and commits, holds and cancels, and cancels a
confirmed receipt; Vera (phone) has no wallet until she buys with "redeem" of "0", then
uses a coupon, recycles clothes and signs in to the member app.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import signal
import time
from typing import Any

import httpx
import pytest

from tests.receiver import SECRET
from tests.server.conftest import Day

pytestmark = pytest.mark.server

POLL_SECONDS = 90.0  # for what the worker does in its own time, on a busy machine
MSK = dt.timezone(dt.timedelta(hours=3))

MILK = {"sku": "MILK-1L", "name": "Milk 1 l", "category": "dairy", "quantity": "2"}
WORKED_LINES = [
    {**MILK, "unit_price": "89.90"},
    {
        "sku": "COFFEE-250",
        "name": "Coffee 250 g",
        "category": "grocery",
        "quantity": "1",
        "unit_price": "450.00",
    },
]


def line(sku: str, price: str, quantity: str = "1") -> dict[str, str]:
    return {"sku": sku, "name": sku.title(), "quantity": quantity, "unit_price": price}


def receipt(external_id: str, card: str, lines: list[dict[str, str]], **extra: Any) -> Any:
    """A receipt of msk-01, dated now (to the second, so never ahead of the server)."""
    return {
        "external_id": external_id,
        "member": {"card": card},
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": dt.datetime.now(MSK).replace(microsecond=0).isoformat(),
        "lines": lines,
        **extra,
    }


def ok(response: httpx.Response, status: int) -> Any:
    """The JSON of a response that must have ``status`` (else the whole answer)."""
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url} → {response.status_code}: {response.text}"
    )
    return response.json()


def available(day: Day, http: httpx.Client, member: str) -> str:
    body = ok(
        http.get(f"/api/v1/members/{day.need(member)['id']}/balances", headers=day.admin), 200
    )
    assert [b["currency"] for b in body["balances"]] == ["BONUS"], body
    return str(body["balances"][0]["available"])


@pytest.fixture
def http(day: Day) -> Any:
    with day.client() as c:
        yield c


# ------------------------------------------------------------------------ morning


def test_the_server_is_up_and_set_up_by_the_command(day: Day, http: httpx.Client) -> None:
    # given the processes the README starts, set up with `kopilka program apply`,
    # `kopilka apikey create` and `kopilka user create` (conftest)
    # then the server is ready, serves the programme applied, and knows both keys
    ready = ok(http.get("/health/ready"), 200)
    assert (ready["status"], ready["checks"]) == ("ok", {"database": "ok", "schema": "ok"})
    assert "name: Server day" in http.get("/api/v1/program", headers=day.admin).text
    assert ok(http.get("/api/v1/members?limit=1", headers=day.till), 200)["items"] == []
    # and the day's processes run: on SQLite the server alone (its worker embedded), on
    # PostgreSQL the server and a worker
    running = ["serve"] if day.backend == "sqlite" else ["serve", "worker"]
    assert [p.name for p in day.processes if p.alive()] == running


def test_a_webhook_endpoint_is_registered(day: Day, http: httpx.Client) -> None:
    # given a receiver on loopback; when the admin registers it for every event
    hook = ok(
        http.post(
            "/api/v1/webhooks",
            headers=day.admin,
            json={"url": day.receiver.receiver.url, "events": ["*"], "secret": SECRET},
        ),
        201,
    )
    # then it is listed, active
    listed = ok(http.get("/api/v1/webhooks", headers=day.admin), 200)["items"]
    assert [(w["id"], w["url"], w["active"]) for w in listed] == [
        (hook["id"], day.receiver.receiver.url, True)
    ]
    day.state["webhook"] = hook
    # each API process caches the endpoints for a second: let it see the new one
    time.sleep(3)


def test_members_enrol_by_phone_and_by_email(day: Day, http: httpx.Client) -> None:
    # when a till enrols Anna with a phone written the local way and an email
    anna = ok(
        http.post(
            "/api/v1/members",
            headers={**day.till, "Idempotency-Key": "enrol-anna"},
            json={
                "phone": "8 916 123-45-67",
                "email": "Anna@Example.com",
                "name": "Анна",
                "consents": {"sms": True},
            },
        ),
        201,
    )
    # then the phone is E.164, the email lower case, the card an EAN-13
    assert (anna["phone"], anna["email"], anna["status"]) == (
        "+79161234567",
        "anna@example.com",
        "active",
    )
    assert re.fullmatch(r"\d{13}", anna["card_number"])
    # when Boris enrols by email only, and Vera by phone only
    boris = ok(
        http.post("/api/v1/members", headers=day.till, json={"email": "boris@example.com"}), 201
    )
    vera = ok(
        http.post(
            "/api/v1/members", headers=day.till, json={"phone": "+7 903 555-12-34", "name": "Вера"}
        ),
        201,
    )
    assert (boris["phone"], boris["email"]) == (None, "boris@example.com")
    assert (vera["phone"], vera["email"]) == ("+79035551234", None)
    day.state.update(anna=anna, boris=boris, vera=vera)
    # and the same enrolment again (same key) is the same member
    again = http.post(
        "/api/v1/members",
        headers={**day.till, "Idempotency-Key": "enrol-anna"},
        json={
            "phone": "8 916 123-45-67",
            "email": "Anna@Example.com",
            "name": "Анна",
            "consents": {"sms": True},
        },
    )
    assert (again.status_code, again.json()["id"]) == (201, anna["id"])
    # and her phone cannot enrol anyone else
    taken = http.post("/api/v1/members", headers=day.till, json={"phone": "+79161234567"})
    assert (taken.status_code, taken.json()["code"]) == (409, "member_exists")
    # and each is found by what they enrolled with
    found = ok(http.get("/api/v1/members", params={"phone": "89161234567"}, headers=day.till), 200)
    assert [m["id"] for m in found["items"]] == [anna["id"]]
    found = ok(
        http.get("/api/v1/members", params={"email": "BORIS@example.com"}, headers=day.till), 200
    )
    assert [m["id"] for m in found["items"]] == [boris["id"]]


def test_balances_are_adjusted(day: Day, http: httpx.Client) -> None:
    anna, boris = day.need("anna"), day.need("boris")
    # when the admin credits the first points of two members who have no wallet yet (the
    # 500 of issue 19 on the embedded SQLite default)
    for member, amount in ((anna, "500.00"), (boris, "300.00")):
        entry = ok(
            http.post(
                f"/api/v1/members/{member['id']}/adjustments",
                headers=day.admin,
                json={"currency": "BONUS", "amount": amount, "reason": "opening balance"},
            ),
            201,
        )
        assert (entry["kind"], entry["currency"], entry["amount"]) == ("adjust", "BONUS", amount)
    # then their balances are exactly that
    assert available(day, http, "anna") == "500.00"
    assert available(day, http, "boris") == "300.00"
    history = ok(http.get(f"/api/v1/members/{anna['id']}/ledger", headers=day.admin), 200)
    assert [(e["kind"], e["amount"]) for e in history["items"]] == [("adjust", "500.00")]


# ------------------------------------------------------------------------ the till


def test_redeem_max_is_the_contracts_worked_example(day: Day, http: httpx.Client) -> None:
    anna = day.need("anna")
    body = receipt(
        "R-1001", anna["card_number"], WORKED_LINES, redeem={"currency": "BONUS", "amount": "max"}
    )
    # when the till calculates Anna's receipt (she holds 500.00)
    q = ok(http.post("/api/v1/purchases/calculate", headers=day.till, json=body), 200)
    # then: cap 0.5 × 629.80 = 314.90, split 89.90 / 225.00, earn 4.49 + 11.25
    assert (q["subtotal"], q["discount"], q["total_due"]) == ("629.80", "0.00", "314.90")
    assert q["redeemed"] == [{"currency": "BONUS", "amount": "314.90", "value": "314.90"}]
    assert q["max_redeemable"] == {"currency": "BONUS", "amount": "314.90"}
    assert [
        (
            ln["line_no"],
            ln["amount"],
            ln["redeemed"][0]["value"],
            ln["total_due"],
            ln["earned"][0]["amount"],
        )
        for ln in q["lines"]
    ] == [(1, "179.80", "89.90", "89.90", "4.49"), (2, "450.00", "225.00", "225.00", "11.25")]
    assert available(day, http, "anna") == "500.00"  # calculate wrote nothing
    # when it confirms with the quote
    p = ok(
        http.post("/api/v1/purchases", headers=day.till, json={**body, "quote_id": q["quote_id"]}),
        201,
    )
    # then the purchase is the figures shown, and the balance 500.00 − 314.90 + 15.74
    assert (p["status"], p["total_due"], p["redeemed"]) == ("confirmed", "314.90", q["redeemed"])
    assert [e["amount"] for e in p["earned"]] == ["15.74"]
    assert available(day, http, "anna") == "200.84"
    # and the same receipt sent again is the same purchase and changes nothing
    again = http.post("/api/v1/purchases", headers=day.till, json=body)
    assert (again.status_code, again.json()["id"]) == (200, p["id"])
    assert available(day, http, "anna") == "200.84"
    day.state["worked_purchase"] = p


def test_two_partial_returns_give_back_the_whole_line_exactly(day: Day, http: httpx.Client) -> None:
    p = day.need("worked_purchase")
    # when the two milks come back in two returns
    returns = [
        ok(
            http.post(
                f"/api/v1/purchases/{p['id']}/returns",
                headers=day.till,
                json={"external_id": f"RET-{n}", "lines": [{"line_no": 1, "quantity": "1"}]},
            ),
            201,
        )
        for n in (1, 2)
    ]
    day.state["returns"] = returns
    # then 89.90 is refunded, 89.90 BONUS restored and 4.49 revoked, exactly
    assert [r["refund_due"] for r in returns] == ["44.95", "44.95"]
    assert [r["points_restored"] for r in returns] == [
        [{"currency": "BONUS", "amount": "44.95"}],
        [{"currency": "BONUS", "amount": "44.95"}],
    ]
    assert [r["points_revoked"][0]["amount"] for r in returns] == ["2.25", "2.24"]
    assert available(day, http, "anna") == "286.25"  # 200.84 + 89.90 − 4.49
    # and a third milk cannot be returned
    third = http.post(
        f"/api/v1/purchases/{p['id']}/returns",
        headers=day.till,
        json={"external_id": "RET-3", "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert third.status_code == 422
    assert (third.json()["code"], third.json()["errors"][0]["field"]) == (
        "return_exceeds_purchase",
        "lines[0].quantity",
    )
    assert available(day, http, "anna") == "286.25"


def test_redeem_an_amount(day: Day, http: httpx.Client) -> None:
    boris = day.need("boris")
    # when Boris (300.00) pays 100.00 of a 300.00 receipt with points
    body = receipt(
        "R-2001",
        boris["card_number"],
        [line("BREAD", "150.00", "2")],
        redeem={"currency": "BONUS", "amount": "100.00"},
    )
    p = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    # then 100.00 is redeemed, 200.00 paid, 5 % of it earned
    assert (p["subtotal"], p["total_due"]) == ("300.00", "200.00")
    assert p["redeemed"] == [{"currency": "BONUS", "amount": "100.00", "value": "100.00"}]
    assert [e["amount"] for e in p["earned"]] == ["10.00"]
    assert available(day, http, "boris") == "210.00"
    # and more than the programme's half of a receipt is refused, changing nothing
    greedy = receipt(
        "R-2002",
        boris["card_number"],
        [line("BREAD", "150.00")],
        redeem={"currency": "BONUS", "amount": "75.01"},
    )
    r = http.post("/api/v1/purchases", headers=day.till, json=greedy)
    assert (r.status_code, r.json()["code"], r.json()["errors"][0]["field"]) == (
        422,
        "redeem_limit_exceeded",
        "redeem.amount",
    )
    assert available(day, http, "boris") == "210.00"


def test_redeem_zero_is_no_redemption(day: Day, http: httpx.Client) -> None:
    vera = day.need("vera")
    # given Vera, who has no wallet yet; when the till sends "redeem" of "0" as tills do
    body = receipt(
        "R-3001",
        vera["card_number"],
        [line("CHEESE", "200.00")],
        redeem={"currency": "BONUS", "amount": "0"},
    )
    q = ok(http.post("/api/v1/purchases/calculate", headers=day.till, json=body), 200)
    p = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    # then nothing is redeemed, the whole receipt is paid, and 5 % of it earned
    assert (q["redeemed"], q["total_due"], q["warnings"]) == ([], "200.00", [])
    assert q["max_redeemable"] == {"currency": "BONUS", "amount": "0.00"}
    assert (p["status"], p["redeemed"], p["total_due"]) == ("confirmed", [], "200.00")
    assert [e["amount"] for e in p["earned"]] == ["10.00"]
    assert available(day, http, "vera") == "10.00"


def test_a_hold_is_committed(day: Day, http: httpx.Client) -> None:
    boris = day.need("boris")
    # when the till holds a 100.00 receipt paying 50.00 with points
    body = receipt(
        "R-2003",
        boris["card_number"],
        [line("TEA", "100.00")],
        redeem={"currency": "BONUS", "amount": "50.00"},
        hold=True,
    )
    held = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    # then the points are reserved and nothing is credited yet (the answer shows what the
    # commit will earn)
    assert (held["status"], held["total_due"]) == ("held", "50.00")
    assert [e["amount"] for e in held["earned"]] == ["2.50"]
    assert held["hold_expires_at"] is not None
    assert available(day, http, "boris") == "160.00"
    # when the fiscal receipt is printed and the till commits
    c = ok(
        http.post(
            f"/api/v1/purchases/{held['id']}/commit",
            headers=day.till,
            json={"receipt_number": "FN-1"},
        ),
        200,
    )
    # then it is confirmed and earns 5 % of the 50.00 paid
    assert (c["status"], c["total_due"]) == ("confirmed", "50.00")
    assert [e["amount"] for e in c["earned"]] == ["2.50"]
    assert available(day, http, "boris") == "162.50"
    # and committing again changes nothing
    again = ok(http.post(f"/api/v1/purchases/{held['id']}/commit", headers=day.till, json={}), 200)
    assert (again["id"], again["status"]) == (held["id"], "confirmed")
    assert available(day, http, "boris") == "162.50"


def test_a_hold_is_cancelled(day: Day, http: httpx.Client) -> None:
    boris = day.need("boris")
    body = receipt(
        "R-2004",
        boris["card_number"],
        [line("TEA", "80.00")],
        redeem={"currency": "BONUS", "amount": "40.00"},
        hold=True,
    )
    held = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    assert available(day, http, "boris") == "122.50"
    # when the customer walks away and the till cancels
    c = ok(http.post(f"/api/v1/purchases/{held['id']}/cancel", headers=day.till), 200)
    # then the reserved points are back and nothing was earned
    assert c["status"] == "released"
    assert available(day, http, "boris") == "162.50"


def test_a_confirmed_purchase_is_cancelled(day: Day, http: httpx.Client) -> None:
    boris = day.need("boris")
    body = receipt("R-2005", boris["card_number"], [line("COAT", "400.00")])
    p = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    assert [e["amount"] for e in p["earned"]] == ["20.00"]
    assert available(day, http, "boris") == "182.50"
    # when the whole purchase is cancelled
    c = ok(http.post(f"/api/v1/purchases/{p['id']}/cancel", headers=day.till), 200)
    # then all of it is refunded and the points it earned taken back
    assert (c["status"], c["refund_due"]) == ("cancelled", "400.00")
    assert available(day, http, "boris") == "162.50"
    # and cancelling again changes nothing
    again = ok(http.post(f"/api/v1/purchases/{p['id']}/cancel", headers=day.till), 200)
    assert again["status"] == "cancelled"
    assert available(day, http, "boris") == "162.50"


def test_a_coupon_code_is_applied_at_the_till(day: Day, http: httpx.Client) -> None:
    vera = day.need("vera")
    # given a pool of single-use codes worth 100.00 off, with an imported code
    pool = ok(
        http.post(
            "/api/v1/coupon-pools",
            headers=day.admin,
            json={
                "name": "Day 100 off",
                "reward": {"kind": "fixed", "value": "100.00"},
                "uses_per_code": 1,
            },
        ),
        201,
    )
    ok(
        http.post(
            f"/api/v1/coupon-pools/{pool['id']}/codes/import",
            headers=day.admin,
            json={"codes": ["DAY-0001"]},
        ),
        201,
    )
    # when Vera's receipt of 500.00 carries it, typed the way a person types it
    body = receipt("R-3002", vera["card_number"], [line("BOOTS", "500.00")], coupons=["day 0001"])
    p = ok(http.post("/api/v1/purchases", headers=day.till, json=body), 201)
    # then it is applied: 100.00 off, 400.00 paid, 5 % of that earned
    day.state["coupon_purchase"] = p
    assert [(c["status"], c.get("reason")) for c in p["coupons"]] == [("applied", None)]
    assert (p["subtotal"], p["discount"], p["total_due"]) == ("500.00", "100.00", "400.00")
    assert [e["amount"] for e in p["earned"]] == ["20.00"]
    assert available(day, http, "vera") == "30.00"
    # and the code is used up: the next receipt is told so and pays in full
    body = receipt("R-3003", vera["card_number"], [line("SOCKS", "50.00")], coupons=["DAY-0001"])
    p = ok(http.post("/api/v1/purchases/calculate", headers=day.till, json=body), 200)
    assert [(c["status"], c["reason"]) for c in p["coupons"]] == [("rejected", "coupon_used")]
    assert (p["discount"], p["total_due"]) == ("0.00", "50.00")
    looked_up = ok(http.get("/api/v1/coupons/DAY-0001", headers=day.admin), 200)
    assert looked_up["status"] == "used"


def test_a_custom_event_grants_its_reward(day: Day, http: httpx.Client) -> None:
    vera = day.need("vera")
    # given the pool the programme's event rule gives a coupon of
    ok(
        http.post(
            "/api/v1/coupon-pools",
            headers=day.admin,
            json={"name": "ECO-NEXT", "reward": {"kind": "percent", "value": "10"}},
        ),
        201,
    )
    # when the till records Vera bringing 2.5 kg of clothes for recycling
    event = {
        "member": {"phone": "+79035551234"},
        "type": "clothes_recycled",
        "external_id": "ECO-0001",
        "occurred_at": dt.datetime.now(MSK).replace(microsecond=0).isoformat(),
        "properties": {"kg": "2.5"},
    }
    e = ok(http.post("/api/v1/events", headers=day.till, json=event), 201)
    # then the rule grants 100 per kg and a personal coupon of ECO-NEXT
    [reward] = e["rewards"]
    assert (reward["rule"], reward["status"]) == ("Eco — clothes recycled", "granted")
    assert (reward["points"]["currency"], reward["points"]["amount"]) == ("BONUS", "250.00")
    assert reward["coupon"]["pool"] == "ECO-NEXT"
    assert available(day, http, "vera") == "280.00"
    coupons = ok(http.get(f"/api/v1/members/{vera['id']}/coupons", headers=day.admin), 200)
    assert [c["code"] for c in coupons["items"]] == [reward["coupon"]["code"]]
    # and the same event again is the same answer, granting nothing more
    again = http.post("/api/v1/events", headers=day.till, json=event)
    assert (again.status_code, again.json()["id"]) == (200, e["id"])
    assert available(day, http, "vera") == "280.00"


def test_a_friend_enrolled_with_a_code_qualifies_and_a_return_takes_it_back(
    day: Day, http: httpx.Client
) -> None:
    boris = day.need("boris")
    # when the till enrols Gleb with Boris's referral code
    gleb = ok(
        http.post(
            "/api/v1/members",
            headers=day.till,
            json={
                "phone": "+7 926 000-11-22",
                "name": "Глеб Орлов",
                "referral_code": boris["referral_code"],
            },
        ),
        201,
    )
    # then Boris sees him joined, masked
    [ref] = ok(http.get(f"/api/v1/members/{boris['id']}/referrals", headers=day.admin), 200)[
        "items"
    ]
    assert (ref["friend"]["display_name"], ref["status"]) == ("Глеб О.", "joined")
    # when Gleb buys for 1200 at the till
    bought = ok(
        http.post(
            "/api/v1/purchases",
            headers=day.till,
            json=receipt("REF-1", gleb["card_number"], [line("COFFEE", "700"), line("TEA", "500")]),
        ),
        201,
    )
    # then the referral qualifies: Boris's 300 and Gleb's 200 pending for 14 days
    [ref] = ok(http.get(f"/api/v1/members/{boris['id']}/referrals", headers=day.admin), 200)[
        "items"
    ]
    assert ref["status"] == "qualified"
    assert [(r["amount"], r["status"]) for r in ref["rewards"]] == [("300.00", "pending")]
    pending = ok(http.get(f"/api/v1/members/{gleb['id']}/balances", headers=day.admin), 200)
    assert pending["balances"][0]["pending"] == "200.00"
    # when he brings back the 700 line: 500 stays paid, below the minimum
    ok(
        http.post(
            f"/api/v1/purchases/{bought['id']}/returns",
            headers=day.till,
            json={"external_id": "REF-1-R", "lines": [{"line_no": 1, "quantity": "1"}]},
        ),
        201,
    )
    # then both rewards are revoked and the referral waits for the next receipt
    [ref] = ok(http.get(f"/api/v1/members/{boris['id']}/referrals", headers=day.admin), 200)[
        "items"
    ]
    assert (ref["status"], ref["reason"]) == ("reversed", "purchase_returned")
    after = ok(http.get(f"/api/v1/members/{gleb['id']}/balances", headers=day.admin), 200)
    assert after["balances"][0]["pending"] == "0.00"


# ------------------------------------------------------------------------ people


def test_the_member_app_signs_in_with_a_code_and_shows_the_card(day: Day) -> None:
    vera = day.need("vera")
    with day.client(headers={"Accept-Language": "en"}) as phone:
        # when Vera asks for a code with her phone written the local way
        asked = ok(phone.post("/api/v1/app/sign-in/code", json={"phone": "8 903 555-12-34"}), 202)
        assert asked["channel"] == "sms"
        # then the code arrives through the file channel, and signs the phone in
        sent = [ln.split("\t") for ln in day.code_file.read_text().splitlines()]
        assert [(s[1], s[2]) for s in sent] == [("sms", "+79035551234")]
        signed = ok(
            phone.post(
                "/api/v1/app/sign-in/verify",
                json={"challenge": asked["challenge"], "code": sent[-1][3]},
            ),
            200,
        )
        assert signed["member_id"] == vera["id"]
        assert "kopilka_member" in phone.cookies
        # and the app reads her balance and her card as it does on the phone
        me = ok(phone.get("/api/v1/app/me"), 200)
        assert me["member"]["id"] == vera["id"]
        assert [(b["currency"], b["available"]) for b in me["balances"]] == [("BONUS", "280.00")]
        card = ok(phone.get("/api/v1/app/card"), 200)
        assert card["card_number"] == vera["card_number"]
        home = phone.get("/app/")
        assert home.status_code == 200, home.text
        shown = re.search(r'data-testid="balance">([^<]+)<', home.text)
        assert shown is not None and shown.group(1) == "280.00", home.text[:3000]
        history = phone.get("/app/history")
        assert history.status_code == 200, history.text
        # and her receipt with the coupon, as the app shows it
        bought = day.need("coupon_purchase")
        shown = phone.get(f"/app/receipts/{bought['id']}")
        assert shown.status_code == 200, shown.text
        row = re.search(r"Boots<br><span[^>]*>([^<]+)</span></th>\s*<td>([^<]+)</td>", shown.text)
        assert row is not None, shown.text[:3000]
        quantity, price = row.group(1).split(" × ")
        assert (quantity, "500.00" in price, "400.00" in row.group(2)) == ("1", True, True)


def test_the_console_signs_in_with_the_login_form(day: Day) -> None:
    anna = day.need("anna")
    with day.client(headers={"Accept-Language": "en"}) as browser:
        # given a member's page, which sends a browser without a session to the login form
        page = browser.get(f"/admin/members/{anna['id']}")
        assert (page.status_code, page.headers["location"].split("?")[0]) == (303, "/admin/login")
        # when the user made with `kopilka user create` posts the login form as a browser does
        form = browser.get("/admin/login")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None, form.text[:2000]
        signed = browser.post(
            "/admin/login",
            data={
                "email": day.console_email,
                "password": day.console_password,
                "csrf": csrf.group(1),
            },
        )
        # then the session opens the dashboards (where /admin sends an admin)
        assert signed.status_code == 303, signed.text
        home = browser.get("/admin/", follow_redirects=True)
        assert (home.status_code, home.url.path) == (200, "/admin/dashboards"), home.text[:2000]
        # and Anna's page, with her card and her balance
        page = browser.get(f"/admin/members/{anna['id']}")
        assert page.status_code == 200, page.text[:2000]
        assert anna["card_number"] in page.text
        assert "286.25" in page.text


# ------------------------------------------------------------------------ evening


def test_the_webhook_receives_signed_deliveries(day: Day, http: httpx.Client) -> None:
    hook, p = day.need("webhook"), day.need("worked_purchase")
    day.need("returns")  # the day's returns were made, so their event is on its way
    receiver = day.receiver.receiver
    assert receiver is not None

    expected_types = {"member.created", "points.adjusted", "purchase.returned"}

    def confirmed() -> list[Any]:
        return [
            h
            for h in receiver.accepted()
            if h.event()["type"] == "purchase.confirmed"
            and h.event()["data"]["purchase_id"] == p["id"]
        ]

    def arrived() -> bool:
        types = {h.event()["type"] for h in receiver.accepted()}
        return bool(confirmed()) and expected_types <= types

    # when the worker has had time to send the outbox: every event of the day, in its own time
    # (the outbox is sent in batches, so the return may come after the confirmation)
    deadline = time.monotonic() + POLL_SECONDS
    while not arrived() and time.monotonic() < deadline:
        time.sleep(0.5)
    # then the receiver got the worked example's purchase.confirmed
    [hit] = confirmed() or [None]
    assert hit is not None, [h.event()["type"] for h in receiver.accepted()]
    event = hit.event()
    assert (event["data"]["total_due"], hit.headers["kopilka-event-type"]) == (
        "314.90",
        "purchase.confirmed",
    )
    # and its signature is HMAC-SHA256 with the secret over "{t}.{raw body}"
    fields = dict(part.split("=", 1) for part in hit.headers["kopilka-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + hit.body, hashlib.sha256)
    assert hmac.compare_digest(fields["v1"], expected.hexdigest())
    assert abs(time.time() - int(fields["t"])) < 3600
    assert json.loads(hit.body)["id"] == hit.headers["kopilka-event-id"]
    # and so is every delivery of the day (the receiver checked each as it came)
    assert receiver.all_signed()
    assert expected_types <= {h.event()["type"] for h in receiver.accepted()}
    # and the delivery log says it was delivered
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        log = ok(
            http.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=200", headers=day.admin), 200
        )
        mine = [d for d in log["items"] if d["event_id"] == event["id"]]
        if (mine and mine[0]["status"] == "delivered") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [d["status"] for d in mine] == ["delivered"], log


def test_the_ledger_verifies(day: Day) -> None:
    # when the operator checks the ledger at the end of the day
    verified = day.cli("ledger", "verify", "--all")
    # then every invariant holds
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ledger OK"), verified.stdout


def test_the_processes_stop_cleanly_and_logged_no_error(day: Day) -> None:
    # when the server (and the worker) are stopped as a service manager stops them
    codes = day.stop_all()
    # then each shuts down by itself (0, or the SIGTERM that uvicorn re-raises once it has
    # shut down gracefully), and no log holds a traceback or an error line
    assert {n: c in (0, -signal.SIGTERM) for n, c in codes.items()} == dict.fromkeys(codes, True), (
        codes,
        day.logs(),
    )
    assert [p.name for p in day.processes if p.killed] == []
    assert day.bad_log_lines() == {}, day.logs()
