"""The console's member page: the tier, its history and a manual assignment."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.core.db import Database, now
from kopilka.members.models import Member
from kopilka.tiers.models import MemberTier
from tests.console.test_console import csrf_of, make_user, sign_in
from tests.tiers.conftest import Buy, Enrol


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert found, testid
    return found.group(1).strip()


def test_a_manager_sees_the_history_and_assigns_a_tier(
    tiered: Database, client: TestClient, enrol: Enrol, buy: Buy
) -> None:
    # given a silver member who spent 18 000
    m = enrol()
    buy(m, now() - dt.timedelta(hours=1), "18000.00")
    client.headers.pop("Authorization", None)
    assert sign_in(client, make_user(tiered, "manager")).status_code == 303
    # when a manager opens the member's page in English
    page = client.get(f"/admin/members/{m['id']}", headers={"Accept-Language": "en"})
    # then the tier, the progress and the history are shown, with the form
    assert page.status_code == 200
    html = page.text
    assert _text(html, "tier-name") == "Серебро"
    assert _text(html, "tier-next") == "Золото: 12,000.00"
    assert 'data-testid="tier-form"' in html
    history = html[html.index('data-testid="tier-history"') :]
    assert "upgrade" in history and "system:tiers" in history
    # when they assign gold until the last day of the year, with a reason
    r = client.post(
        f"/admin/members/{m['id']}/tier",
        data={
            "tier": "gold",
            "until": "2099-12-31",
            "reason": "Complaint settled",
            "csrf": csrf_of(html),
        },
        follow_redirects=False,
    )
    # then the member is gold with the floor until the end of that day in Moscow
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith("?done=tier_set")
    with tiered.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) == "gold"
        state = s.get(MemberTier, uuid.UUID(m["id"]))
        assert state is not None
        assert state.floor_until == dt.datetime(2099, 12, 31, 21, 0, tzinfo=dt.UTC)
        assert state.floor_reason == "Complaint settled"
        assert state.floor_set_by is not None and state.floor_set_by.startswith("user:")
    html = client.get(f"/admin/members/{m['id']}", headers={"Accept-Language": "ru"}).text
    assert "Complaint settled" in html and "назначен вручную" in html
    # when the form is sent with an unknown tier and no reason
    bad = client.post(
        f"/admin/members/{m['id']}/tier",
        data={"tier": "diamond", "reason": "x", "csrf": csrf_of(html)},
    )
    # then the page says what is wrong and nothing changed
    assert bad.status_code == 422
    assert "reason" in _text(bad.text, "tier-error")


def test_an_analyst_sees_the_tier_but_may_not_assign(
    tiered: Database, client: TestClient, enrol: Enrol, buy: Buy
) -> None:
    m = enrol()
    buy(m, now() - dt.timedelta(hours=1), "100.00")
    client.headers.pop("Authorization", None)
    sign_in(client, make_user(tiered, "analyst"))
    html = client.get(f"/admin/members/{m['id']}").text
    assert 'data-testid="tier-history"' in html
    assert 'data-testid="tier-form"' not in html
    r = client.post(
        f"/admin/members/{m['id']}/tier",
        data={"tier": "gold", "reason": "just because", "csrf": csrf_of(html)},
    )
    assert r.status_code == 403
    with tiered.session() as s:
        assert s.scalar(select(Member.tier).where(Member.id == uuid.UUID(m["id"]))) == "silver"
