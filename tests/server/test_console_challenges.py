"""The console's challenge screens through the real server, on an installation of their own
(the challenges' server test's ``install``: ``kopilka serve`` and, on PostgreSQL, ``kopilka
worker`` as processes, with ``programme.yaml``): a till's three teas complete ``tea-week``;
the report and the simulation over today's receipts say so; a console user signs in,
sees the figures, checks a new challenge and publishes it, and ``kopilka program export``
has it; no process logs an error."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from tests.server.conftest import Day
from tests.server.test_challenges import MSK, install, ok, tea  # noqa: F401 - the fixture

pytestmark = pytest.mark.server

TEA_WEEK = {
    "code": "tea-week",
    "name": {"ru": "Три чая за неделю", "en": "Three teas a week"},
    "goal": {"count": "purchases", "target": 3, "where": {"lines": {"skus": ["CHAL-TEA"]}}},
    "period": {"every": "week"},
    "reward": {"badge": "tea-lover", "hold_days": 14},
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def test_the_report_the_simulation_and_the_form_on_the_real_server(
    install: Day,  # noqa: F811
) -> None:
    today = dt.datetime.now(MSK).date().isoformat()
    with install.client() as http:
        # given a member whose three teas today complete tea-week
        member = ok(
            http.post("/api/v1/members", headers=install.till, json={"phone": "+79035550077"}),
            201,
        )
        card = ok(http.get(f"/api/v1/members/{member['id']}", headers=install.admin), 200)[
            "card_number"
        ]
        for n in range(3):
            ok(http.post("/api/v1/purchases", headers=install.till, json=tea(f"C-{n}", card)), 201)
        # when the report of today is read
        rep = ok(
            http.get(
                "/api/v1/reports/challenges",
                params={"from": today, "to": today},
                headers=install.admin,
            ),
            200,
        )
        # then tea-week has one member who took part and completed it; a badge its cost
        [item] = [i for i in rep["items"] if i["code"] == "tea-week"]
        assert (item["took_part"], item["completed"], item["completion_rate"]) == (
            1,
            1,
            "1.0000",
        )
        assert item["cost"]["badges"] == [{"badge": "tea-lover", "awarded": 1}]
        # and the simulation over today's receipts agrees
        sim = ok(
            http.post(
                "/api/v1/challenges/simulate",
                json={"challenge": TEA_WEEK, "from": today, "to": today},
                headers=install.admin,
            ),
            200,
        )
        assert (sim["receipts"], sim["progressed"], sim["completed"]) == (3, 1, 1)
        # a till may not simulate
        assert (
            http.post(
                "/api/v1/challenges/simulate", json={"challenge": TEA_WEEK}, headers=install.till
            ).status_code
            == 403
        )
    with install.client(follow_redirects=True) as browser:
        # when the console user signs in and opens Challenges
        form = browser.get("/admin/login")
        signed = browser.post(
            "/admin/login",
            data={
                "email": install.console_email,
                "password": install.console_password,
                "csrf": csrf_of(form.text),
            },
        )
        assert signed.status_code == 200, signed.text
        listed = browser.get("/admin/challenges", params={"from": today, "to": today})
        assert listed.status_code == 200 and 'data-challenge="tea-week"' in listed.text
        # and checks, then publishes, a new challenge
        new = browser.get("/admin/challenges/new")
        fields: dict[str, Any] = {
            "csrf": csrf_of(new.text),
            "replacing": "",
            "code": "two-teas",
            "name_ru": "Два чая",
            "name_en": "Two teas",
            "count": "purchases",
            "target": "2",
            "skus": "CHAL-TEA",
            "period_kind": "every",
            "every": "day",
            "join": "auto",
            "badge": "tea-lover",
            "sim_from": today,
            "sim_to": today,
        }
        checked = browser.post("/admin/challenges/draft", data={**fields, "action": "check"})
        assert checked.status_code == 200, checked.text
        assert re.search(r'data-testid="sim-completed"><span>[^<]*</span><strong>1<', checked.text)
        version = re.search(r'name="version" value="(\d+)"', checked.text)
        digest = re.search(r'name="checked" value="([0-9a-f]+)"', checked.text)
        assert version and digest
        published = browser.post(
            "/admin/challenges/draft",
            data={
                **fields,
                "action": "publish",
                "version": version.group(1),
                "checked": digest.group(1),
            },
            follow_redirects=False,
        )
        assert published.status_code == 303, published.text
        assert published.headers["location"].startswith("/admin/challenges?done=published:")
    # then the programme in force has it, and no process logged an error
    exported = install.cli("program", "export")
    assert exported.returncode == 0 and "code: two-teas" in exported.stdout
    assert install.bad_log_lines() == {}, install.logs()
