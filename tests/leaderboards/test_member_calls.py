"""The member app's own calls: a member signed in on their phone reads a board with their
own place (without asking for it), may ask for no one else's, and opts in or out for
themselves only (with the session's CSRF token)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.leaderboards.conftest import Buy, Enrol, Join, table
from tests.memberapp.conftest import (  # noqa: F401 - fixtures
    _fresh_limits,
    code_file,
    sign_in_by_code,
)


def test_a_member_sees_their_own_place_and_chooses_for_themselves_only(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    buy: Buy,
    join: Join,
    code_file: Path,  # noqa: F811
) -> None:
    # given Anna and Boris with receipts, Boris shown; Anna signed in on her phone
    anna = enrol(name="Анна Кузнецова", phone="+79161112233")
    boris = enrol(name="Борис Смирнов")
    join(boris)
    buy("R-1", anna["card_number"], "500")
    buy("R-2", boris["card_number"], "900")
    phone = sign_in_by_code(client, code_file, "+79161112233")
    own = f"/api/v1/members/{anna['id']}/leaderboard"
    # when she opts in from the app (with the CSRF token)
    r = client.put(own, json={"opted_in": True, "nickname": "Anna_K"}, headers=phone.headers)
    assert r.status_code == 200, r.text
    # then the board gives her place without her asking
    r = client.get("/api/v1/leaderboards/spenders")
    assert r.status_code == 200, r.text
    assert table(r.json()) == [(1, "Борис С.", "900.00"), (2, "Anna_K", "500.00")]
    assert r.json()["member"] == {"rank": 2, "value": "500.00"}
    # and she may not ask for Boris's place, nor choose for him
    assert client.get(f"/api/v1/leaderboards/spenders?member={boris['id']}").status_code == 403
    r = client.put(
        f"/api/v1/members/{boris['id']}/leaderboard",
        json={"opted_in": False},
        headers=phone.headers,
    )
    assert r.status_code == 403
    assert table(client.get("/api/v1/leaderboards/spenders", headers=admin).json())[0] == (
        1,
        "Борис С.",
        "900.00",
    )
