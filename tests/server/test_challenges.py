"""Challenges through the real server, on an installation of their own (``kopilka serve``
and, on PostgreSQL, ``kopilka worker`` as processes, set up by the ``kopilka`` command with
``programme.yaml``): a till's receipts advance a weekly challenge, the third completes it
and awards its badge, a return within the hold takes both back, and the processes log no
error. Its own installation: the day (``test_day.py``) starts with no member at all."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND, PG_ADMIN_URL
from tests.receiver import ReceiverServer
from tests.server.conftest import Day, _environment, _psycopg_url, _set_up

pytestmark = pytest.mark.server

MSK = dt.timezone(dt.timedelta(hours=3))


@pytest.fixture(scope="module")
def install() -> Iterator[Day]:
    directory = Path(tempfile.mkdtemp(prefix="kopilka-challenges-"))
    d = Day(BACKEND, directory, {}, ReceiverServer(), code_file=directory / "member-codes.log")
    pg_name: str | None = None
    try:
        if BACKEND == "postgresql":
            pg_name = f"kopilka_challenges_{secrets.token_hex(6)}"
            with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{pg_name}"')
            url = make_url(PG_ADMIN_URL).set(database=pg_name)
            d.env = _environment(directory, url.render_as_string(hide_password=False))
            assert d.cli("migrate").returncode == 0, d.logs()
            _set_up(d)
            d.serve()
            d.start("worker", "worker")
        else:
            d.env = _environment(directory, f"sqlite:///{directory}/kopilka.db")
            d.serve()
            _set_up(d)
        yield d
    finally:
        d.stop_all()
        d.receiver.stop()
        if pg_name is not None:
            with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(directory, ignore_errors=True)


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()


def tea(ext: str, card: str) -> dict[str, Any]:
    return {
        "external_id": ext,
        "member": {"card": card},
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": dt.datetime.now(MSK).replace(microsecond=0).isoformat(),
        "lines": [{"sku": "CHAL-TEA", "name": "Tea", "quantity": "1", "unit_price": "120.00"}],
    }


def test_receipts_complete_a_challenge_and_a_return_takes_it_back(install: Day) -> None:
    with install.client() as http:
        # given a member enrolled at the till
        member = ok(
            http.post("/api/v1/members", headers=install.till, json={"phone": "+79035550001"}),
            201,
        )
        card = ok(http.get(f"/api/v1/members/{member['id']}", headers=install.admin), 200)[
            "card_number"
        ]
        url = f"/api/v1/members/{member['id']}/challenges"
        # when the till confirms two teas
        first = ok(http.post("/api/v1/purchases", headers=install.till, json=tea("T-1", card)), 201)
        ok(http.post("/api/v1/purchases", headers=install.till, json=tea("T-2", card)), 201)
        # then the challenge stands at two of three
        [item] = ok(http.get(url, headers=install.admin), 200)["items"]
        assert (item["code"], item["status"], item["progress"]) == (
            "tea-week",
            "active",
            {"value": "2", "target": "3"},
        )
        # when the third comes: completed, the badge awarded (held 14 days)
        ok(http.post("/api/v1/purchases", headers=install.till, json=tea("T-3", card)), 201)
        [item] = ok(http.get(url, headers=install.admin), 200)["items"]
        assert (item["status"], [r["status"] for r in item["rewards"]]) == (
            "completed",
            ["pending"],
        )
        badges = ok(http.get(f"/api/v1/members/{member['id']}/badges", headers=install.admin), 200)
        assert [b["code"] for b in badges["items"]] == ["tea-lover"]
        # when the first receipt is cancelled within the hold
        ok(http.post(f"/api/v1/purchases/{first['id']}/cancel", headers=install.admin), 200)
        # then the completion is undone and the badge withdrawn
        [item] = ok(http.get(url, headers=install.admin), 200)["items"]
        assert (item["status"], item["progress"]["value"]) == ("active", "2")
        assert [r["status"] for r in item["rewards"]] == ["revoked"]
        badges = ok(http.get(f"/api/v1/members/{member['id']}/badges", headers=install.admin), 200)
        assert badges["items"] == []
    # and the ledger holds, and no process logged an error
    verified = install.cli("ledger", "verify", "--all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert install.bad_log_lines() == {}, install.logs()
