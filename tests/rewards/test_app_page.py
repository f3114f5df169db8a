"""The member app's sticker card page (server-rendered): a debt shown after a returned
purchase's stickers were spent; the member's own claim from the app with the session's
CSRF token; another member's claim refused."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.memberapp.conftest import code_file, sign_in_by_code  # noqa: F401 - fixture
from tests.rewards.conftest import TOWEL, Enrol, line, receipt
from tests.rewards.test_claims import pool

RU = {"Accept-Language": "ru-RU,ru;q=0.9"}


def test_the_card_shows_a_debt_and_the_member_claims_from_the_app(
    client: TestClient,
    admin: dict[str, str],
    enrol: Enrol,
    code_file: Path,  # noqa: F811
) -> None:
    # given a member who earned 30 stickers on a TV, spent them on a towel, returned the TV
    pool(client, admin)
    m = enrol()
    tv = client.post(
        "/api/v1/purchases",
        json=receipt("R-1", m["card_number"], line("TV", "9000.00")),
        headers=admin,
    ).json()
    assert (
        client.post(
            "/api/v1/purchases", json=receipt("R-2", m["card_number"], TOWEL), headers=admin
        ).status_code
        == 201
    )
    r = client.post(
        f"/api/v1/purchases/{tv['id']}/returns",
        json={"external_id": "RET-1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # when she opens the sticker card in the app
    me = sign_in_by_code(client, code_file, m["phone"])
    page = client.get("/app/stickers", headers=RU)
    # then it shows the debt in words and no reward within reach
    assert page.status_code == 200, page.text
    debt = re.search(r'data-testid="sticker-debt">([^<]+)<', page.text)
    assert debt is not None and debt.group(1).startswith("Долг: 30.")
    assert re.findall(r'data-testid="reward-progress">([^<]+)<', page.text) == [
        "0 из 30",
        "0 из 10",
    ]
    # and her claim from the app is refused for want of stickers, with the session's token
    url = f"/api/v1/members/{me.member_id}/rewards/coffee/claim"
    r = client.post(url, headers={**me.headers, "Idempotency-Key": "app-1"})
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_balance")
    # and another member's rewards are not hers to claim
    other = enrol("50")
    r = client.post(
        f"/api/v1/members/{other['id']}/rewards/coffee/claim",
        headers={**me.headers, "Idempotency-Key": "app-2"},
    )
    assert r.status_code == 403
