"""Leaderboards over the API, on both databases: ranks and ties, who shows, periods in
Moscow's time, per-store boards, returns and cancels taking back, replays counted once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.core.plan import Plan
from kopilka.core.write import write
from kopilka.leaderboards import service
from kopilka.program.service import current_program
from tests.conftest import Clock
from tests.leaderboards.conftest import Buy, Enrol, Join, board, receipt, table


def test_members_shown_are_ranked_by_value_then_by_who_reached_it_first(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given four members; Vera does not opt in
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    vera = enrol(name="Вера Орлова")
    gleb = enrol(name="Глеб")
    join(anna, nickname="Аннушка")
    join(boris)
    join(gleb)
    # when Anna and Boris spend the same, Anna an hour earlier, Gleb more, Vera most
    buy("R-1", anna["card_number"], "1000", at="2026-12-07T10:00:00+03:00")
    buy("R-2", boris["card_number"], "1000", at="2026-12-07T11:00:00+03:00")
    buy("R-3", gleb["card_number"], "2000")
    buy("R-4", vera["card_number"], "5000")
    # then the board ranks only those shown: Gleb, then Anna (her 1000 came first), Boris
    got = board(client, admin, "spenders", member=boris["id"])
    assert table(got) == [
        (1, "Глеб", "2000.00"),
        (2, "Аннушка", "1000.00"),
        (3, "Борис С.", "1000.00"),
    ]
    assert got["member"] == {"rank": 3, "value": "1000.00"}
    assert (got["period"], got["store"]) == ("2026-12", None)
    # and Vera, not shown, has no rank
    assert board(client, admin, "spenders", member=vera["id"])["member"] is None
    # and the points board shows BONUS earned (5 %), at most its size (3)
    assert table(board(client, admin, "bonus")) == [
        (1, "Глеб", "100.00"),
        (2, "Аннушка", "50.00"),
        (3, "Борис С.", "50.00"),
    ]
    assert table(board(client, admin, "spenders", limit=1)) == [(1, "Глеб", "2000.00")]


def test_opting_in_shows_what_was_scored_before_and_opting_out_hides_it_at_once(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given Anna's receipt while she is not shown, and Boris shown
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(boris)
    buy("R-1", anna["card_number"], "3000")
    buy("R-2", boris["card_number"], "1000")
    assert table(board(client, admin, "spenders")) == [(1, "Борис С.", "1000.00")]
    # when she opts in, her score shows at once, first
    join(anna)
    assert table(board(client, admin, "spenders")) == [
        (1, "Анна К.", "3000.00"),
        (2, "Борис С.", "1000.00"),
    ]
    # when she opts out, it is hidden at once, and Boris is first again
    join(anna, opted_in=False)
    got = board(client, admin, "spenders", member=anna["id"])
    assert table(got) == [(1, "Борис С.", "1000.00")]
    assert got["member"] is None
    assert client.get(f"/api/v1/members/{anna['id']}/leaderboard", headers=admin).json() == {
        "opted_in": False,
        "nickname": None,
        "display_name": "Анна К.",
    }


def test_sunday_2359_and_monday_0001_in_moscow_land_in_different_weeks(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given Anna shown
    anna = enrol(name="Анна Кузнецова")
    join(anna)
    # when she buys on Sunday at 23:59 and on Monday at 00:01, Moscow time
    buy("R-1", anna["card_number"], "100", at="2026-12-06T23:59:00+03:00")
    buy("R-2", anna["card_number"], "100", at="2026-12-07T00:01:00+03:00")
    # then each receipt is a visit of its own ISO week
    assert table(board(client, admin, "regulars", period="2026-W49")) == [(1, "Анна К.", "1")]
    assert table(board(client, admin, "regulars", period="2026-W50")) == [(1, "Анна К.", "1")]
    current = board(client, admin, "regulars")
    assert (current["period"], table(current)) == ("2026-W50", [(1, "Анна К.", "1")])
    # and the month board counts both
    assert table(board(client, admin, "spenders")) == [(1, "Анна К.", "200.00")]


def test_a_per_store_board_counts_each_store_apart(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given Anna and Boris shown
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(anna)
    join(boris)
    # when Anna visits Тверская twice and Boris Арбат once, and Тверская once
    buy("R-1", anna["card_number"], "100", store="msk-01")
    buy("R-2", anna["card_number"], "100", store="msk-01")
    buy("R-3", boris["card_number"], "100", store="msk-02")
    buy("R-4", boris["card_number"], "100", store="msk-01")
    # then each store has its own ranking
    day = "2026-12-07"
    assert table(board(client, admin, "store-day", store="msk-01", period=day)) == [
        (1, "Анна К.", "2"),
        (2, "Борис С.", "1"),
    ]
    assert table(board(client, admin, "store-day", store="msk-02")) == [(1, "Борис С.", "1")]
    # and a per-store board needs its store; another board takes none
    r = client.get("/api/v1/leaderboards/store-day", headers=admin)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["store"]
    r = client.get("/api/v1/leaderboards/spenders?store=msk-01", headers=admin)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["store"]
    r = client.get("/api/v1/leaderboards/store-day?store=nowhere", headers=admin)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (422, "unknown_store")


def test_a_return_and_a_cancel_take_back_what_the_receipt_gave(
    client: TestClient, admin: dict[str, str], enrol: Enrol, buy: Buy, join: Join
) -> None:
    # given Anna shown, with a receipt of two lines (1000 and 500)
    anna = enrol(name="Анна Кузнецова")
    join(anna)
    p = buy("R-1", anna["card_number"], "1000", "500")

    def scores() -> tuple[Any, ...]:
        return tuple(
            table(board(client, admin, code)) for code in ("spenders", "bonus", "regulars")
        )

    assert scores() == (
        [(1, "Анна К.", "1500.00")],
        [(1, "Анна К.", "75.00")],
        [(1, "Анна К.", "1")],
    )
    # when the 500 line is returned (and the return is sent again)
    ret = {"external_id": "RET-1", "lines": [{"line_no": 2, "quantity": "1"}]}
    for _ in range(2):
        r = client.post(f"/api/v1/purchases/{p['id']}/returns", json=ret, headers=admin)
        assert r.status_code in (200, 201), r.text
    # then the money and points it refunded and revoked are taken back once; still a visit
    assert scores() == (
        [(1, "Анна К.", "1000.00")],
        [(1, "Анна К.", "50.00")],
        [(1, "Анна К.", "1")],
    )
    # when the rest is cancelled (twice: the second is a replay)
    for _ in range(2):
        r = client.post(
            f"/api/v1/purchases/{p['id']}/cancel", headers={**admin, "Idempotency-Key": "c-1"}
        )
        assert r.status_code == 200, r.text
    # then nothing of the receipt is left, the visit neither
    assert scores() == (
        [(1, "Анна К.", "0.00")],
        [(1, "Анна К.", "0.00")],
        [(1, "Анна К.", "0")],
    )


def test_a_replayed_receipt_is_counted_once(
    client: TestClient, admin: dict[str, str], enrol: Enrol, join: Join, boards: Clock
) -> None:
    # given Anna shown
    anna = enrol(name="Анна Кузнецова")
    join(anna)
    body = receipt("R-1", anna["card_number"], "1000")
    # when the till sends the same receipt three times
    codes = [client.post("/api/v1/purchases", json=body, headers=admin).status_code for _ in "abc"]
    # then it is recorded once, and counted once
    assert codes == [201, 200, 200]
    assert table(board(client, admin, "spenders")) == [(1, "Анна К.", "1000.00")]
    assert table(board(client, admin, "regulars")) == [(1, "Анна К.", "1")]


def test_a_nickname_is_checked_and_unique_whatever_its_case(
    client: TestClient, admin: dict[str, str], enrol: Enrol, join: Join
) -> None:
    # given Anna shown as "Аннушка"
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(anna, nickname="Аннушка")
    url = f"/api/v1/members/{boris['id']}/leaderboard"
    # when Boris asks for her nickname in capitals, or bad ones
    for nick, code in [
        ("АННУШКА", "taken"),
        ("ab", "invalid"),
        ("<script>", "invalid"),
        ("-boris", "invalid"),
        ("bo  ris", "invalid"),
    ]:
        r = client.put(url, json={"opted_in": True, "nickname": nick}, headers=admin)
        # then each is refused, naming the nickname, and nothing changes
        assert r.status_code == 422, nick
        assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("nickname", code)]
    assert client.get(url, headers=admin).json() == {
        "opted_in": False,
        "nickname": None,
        "display_name": None,
    }
    # and a good one is taken
    r = client.put(url, json={"opted_in": True, "nickname": " Борис_2026 "}, headers=admin)
    assert r.json() == {"opted_in": True, "nickname": "Борис_2026", "display_name": "Борис_2026"}


def test_boards_are_listed_and_a_bad_period_or_board_is_refused(
    client: TestClient, admin: dict[str, str], boards: Clock
) -> None:
    listed = client.get("/api/v1/leaderboards", headers=admin).json()["items"]
    assert [(b["code"], b["metric"], b["period"], b["per_store"]) for b in listed] == [
        ("spenders", "spent", "month", False),
        ("bonus", "points_earned", "all", False),
        ("regulars", "visits", "week", False),
        ("store-day", "visits", "day", True),
        ("coffee", "challenge", "week", False),
    ]
    for code, period in [("spenders", "2026-13"), ("spenders", "2026-W49"), ("regulars", "x")]:
        r = client.get(f"/api/v1/leaderboards/{code}?period={period}", headers=admin)
        assert r.status_code == 422, period
        assert [e["field"] for e in r.json()["errors"]] == ["period"]
    r = client.get("/api/v1/leaderboards/nope", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "leaderboard_not_found")


def test_the_challenges_add_their_progress_through_plan_add(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, join: Join
) -> None:
    # given Anna shown and Boris not
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(anna)
    at = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    # when the challenges' hook adds progress of "five-coffees" (and of another challenge)
    with db.session() as s:
        spec = current_program(s).spec
        plan = Plan()
        for member, shown, delta in [(anna, True, 3), (boris, False, 4), (anna, True, -1)]:
            service.plan_add(
                plan,
                {service.VISIBLE: shown},
                challenge="five-coffees",
                member_id=uuid.UUID(member["id"]),
                at=at,
                store="msk-01",
                delta=Decimal(delta),
                spec=spec,
            )
            service.plan_add(
                plan,
                {service.VISIBLE: shown},
                challenge="other",
                member_id=uuid.UUID(member["id"]),
                at=at,
                store="msk-01",
                delta=Decimal(9),
                spec=spec,
            )
        write(s, plan)
        s.commit()
    # then the challenge's board has Anna's progress (3 - 1) and only hers is shown
    got = board(client, admin, "coffee", member=anna["id"])
    assert table(got) == [(1, "Анна К.", "2")]
    assert got["member"] == {"rank": 1, "value": "2"}
    join(boris)
    assert table(board(client, admin, "coffee")) == [(1, "Борис С.", "4"), (2, "Анна К.", "2")]


def test_a_challenge_board_follows_the_challenge_through_receipts_and_a_cancel(
    client: TestClient, admin: dict[str, str], enrol: Enrol, join: Join, buy: Buy
) -> None:
    # given Anna shown on the boards and Boris not, both in the challenge of big receipts
    anna = enrol(name="Анна Кузнецова")
    boris = enrol(name="Борис Смирнов")
    join(anna)
    # when Anna buys twice for 9,000 and once for 100 (which does not count), Boris once
    buy("C-1", anna["card_number"], "9000.00")
    second = buy("C-2", anna["card_number"], "9500.00")
    buy("C-3", anna["card_number"], "100.00")
    buy("C-4", boris["card_number"], "9000.00")
    # then the challenge's board has Anna's two, and Boris is not shown
    got = board(client, admin, "coffee", member=anna["id"])
    assert table(got) == [(1, "Анна К.", "2")]
    assert board(client, admin, "coffee", member=boris["id"])["member"] is None
    # when her second receipt is cancelled, the board follows the challenge back to one
    r = client.post(f"/api/v1/purchases/{second['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert table(board(client, admin, "coffee")) == [(1, "Анна К.", "1")]
    progress = client.get(f"/api/v1/members/{anna['id']}/challenges", headers=admin).json()
    (five,) = [c for c in progress["items"] if c["code"] == "five-coffees"]
    assert five["progress"] == {"value": "1", "target": "5"}
    # and when Boris opts in, what he scored before shows (a tie: Anna reached one first)
    join(boris)
    assert table(board(client, admin, "coffee")) == [(1, "Анна К.", "1"), (2, "Борис С.", "1")]
