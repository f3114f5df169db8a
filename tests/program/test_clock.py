"""The programme's ``clock``: which moments a receipt or a custom event may carry.

Regression (issue 19): a receipt dated 2100-01-01 was recorded, its points pending until
2100; nothing limited how old or how far ahead ``occurred_at`` could be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from kopilka.spec.program import ClockSpec
from tests.conftest import TEST_PROGRAM
from tests.purchases.conftest import receipt

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
PATHS = ("/api/v1/purchases/calculate", "/api/v1/purchases")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """Kopilka's clock stopped at ``NOW``, as far as plausibility is concerned."""
    monkeypatch.setattr(program_service, "now", lambda: NOW)
    return NOW


def _programme(**clock: int) -> str:
    """The test programme with the default ``clock`` (none given) or these settings."""
    doc = yaml.safe_load(TEST_PROGRAM)
    doc.pop("clock")
    if clock:
        doc["clock"] = clock
    return yaml.safe_dump(doc, allow_unicode=True)


Apply = Callable[..., None]


@pytest.fixture
def apply(db: Database) -> Apply:
    def make(**clock: int) -> None:
        spec = program_service.parse_program(_programme(**clock))
        with db.session() as s:
            program_service.apply_program(s, spec, actor="test")
            s.commit()
        program_service.invalidate_cache()

    return make


def _at(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()


def _refusal(r: Any) -> tuple[int, str, list[tuple[str, str, str]]]:
    body = r.json()
    return r.status_code, body["code"], [(e["field"], e["in"], e["code"]) for e in body["errors"]]


def _count(client: TestClient, admin: dict[str, str]) -> int:
    return len(client.get("/api/v1/purchases", headers=admin).json()["items"])


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("moment", "code"),
    [
        (dt.datetime(2100, 1, 1, 10, tzinfo=dt.UTC), "in_the_future"),
        (NOW + dt.timedelta(minutes=10, seconds=1), "in_the_future"),
        (NOW - dt.timedelta(days=30, seconds=1), "too_old"),
        (dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "too_old"),
    ],
)
def test_by_default_a_receipt_may_be_30_days_old_and_10_minutes_ahead_and_no_more(
    client: TestClient, admin: dict[str, str], apply: Apply, moment: dt.datetime, code: str
) -> None:
    # given the programme without a clock setting (the defaults)
    apply()
    for path in PATHS:
        # when a till sends a receipt dated outside the window
        r = client.post(
            path, json=receipt(f"R-{code}", None, occurred_at=_at(moment)), headers=admin
        )
        # then it is refused naming occurred_at, and nothing is recorded
        assert _refusal(r) == (422, "validation_error", [("occurred_at", "body", code)]), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert _count(client, admin) == 0


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    "moment", [NOW + dt.timedelta(minutes=10), NOW, NOW - dt.timedelta(days=30)]
)
def test_the_edges_of_the_default_window_are_accepted(
    client: TestClient, admin: dict[str, str], apply: Apply, moment: dt.datetime
) -> None:
    # given the default window
    apply()
    # when a receipt is dated at its very edge (or now)
    body = receipt("R-EDGE", None, occurred_at=_at(moment))
    calculated = client.post("/api/v1/purchases/calculate", json=body, headers=admin)
    confirmed = client.post("/api/v1/purchases", json=body, headers=admin)
    # then it is recorded
    assert calculated.status_code == 200, calculated.text
    assert confirmed.status_code == 201, confirmed.text
    assert _count(client, admin) == 1


@pytest.mark.usefixtures("clock")
def test_the_programme_widens_or_narrows_the_window(
    client: TestClient, admin: dict[str, str], apply: Apply
) -> None:
    # given a programme that takes receipts a year old, and 2 minutes of drift
    apply(max_replay_days=400, max_drift_minutes=2)
    year_ago = receipt("R-OLD", None, occurred_at=_at(NOW - dt.timedelta(days=365)))
    ahead = receipt("R-AHEAD", None, occurred_at=_at(NOW + dt.timedelta(minutes=3)))
    # when a till replays a receipt of a year ago and one 3 minutes ahead
    old = client.post("/api/v1/purchases", json=year_ago, headers=admin)
    early = client.post("/api/v1/purchases", json=ahead, headers=admin)
    # then the old one is recorded and the early one refused, its message naming the setting
    assert old.status_code == 201, old.text
    assert _refusal(early) == (422, "validation_error", [("occurred_at", "body", "in_the_future")])
    assert "clock.max_drift_minutes" in early.json()["errors"][0]["message"]


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("moment", "code"),
    [
        (dt.datetime(2100, 1, 1, tzinfo=dt.UTC), "in_the_future"),
        (NOW - dt.timedelta(days=31), "too_old"),
    ],
)
def test_a_custom_event_is_held_to_the_same_window(
    client: TestClient, admin: dict[str, str], apply: Apply, moment: dt.datetime, code: str
) -> None:
    # given the default window and a member
    apply()
    member = client.post("/api/v1/members", json={"phone": "+79165550001"}, headers=admin).json()
    event = {"member": {"id": member["id"]}, "type": "clothes_recycled", "external_id": "E-1"}
    # when an event is sent dated outside the window, then inside it
    late = client.post("/api/v1/events", json={**event, "occurred_at": _at(moment)}, headers=admin)
    fine = client.post("/api/v1/events", json={**event, "occurred_at": _at(NOW)}, headers=admin)
    # then the first is refused naming occurred_at and the second recorded
    assert _refusal(late) == (422, "validation_error", [("occurred_at", "body", code)]), late.text
    assert fine.status_code == 201, fine.text


def test_a_receipt_replayed_with_its_idempotency_key_keeps_its_first_answer(
    client: TestClient, admin: dict[str, str], apply: Apply, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a receipt recorded with an Idempotency-Key on the last day of its window
    apply()
    monkeypatch.setattr(program_service, "now", lambda: NOW)
    body = receipt("R-KEY", None, occurred_at=_at(NOW - dt.timedelta(days=29)))
    key = {**admin, "Idempotency-Key": "till-7-R-KEY"}
    first = client.post("/api/v1/purchases", json=body, headers=key)
    assert first.status_code == 201, first.text
    # when the till sends it again with the key, two days later
    monkeypatch.setattr(program_service, "now", lambda: NOW + dt.timedelta(days=2))
    again = client.post("/api/v1/purchases", json=body, headers=key)
    # then it gets the first answer, not a refusal
    assert (again.status_code, again.json()) == (201, first.json())


@pytest.mark.parametrize(
    ("clock", "field"),
    [
        ({"max_replay_days": -1}, "clock.max_replay_days"),
        ({"max_replay_days": 3651}, "clock.max_replay_days"),
        ({"max_drift_minutes": 1441}, "clock.max_drift_minutes"),
        ({"max_drift_minutes": "soon"}, "clock.max_drift_minutes"),
        ({"max_drift": 5}, "clock.max_drift"),
    ],
)
def test_a_bad_clock_setting_is_refused_naming_its_path(
    client: TestClient, admin: dict[str, str], program: Database, clock: dict[str, Any], field: str
) -> None:
    # when a programme with a bad clock setting is applied
    doc = yaml.safe_load(TEST_PROGRAM)
    doc["clock"] = clock
    r = client.put(
        "/api/v1/program",
        content=yaml.safe_dump(doc, allow_unicode=True),
        headers={**admin, "Content-Type": "application/yaml"},
    )
    # then it is refused naming the path, and the programme in force stays
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "program_invalid"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    now_in_force = yaml.safe_load(client.get("/api/v1/program", headers=admin).text)
    assert now_in_force["clock"] == {"max_replay_days": 3650, "max_drift_minutes": 10}


def test_the_window_is_inclusive_at_both_ends() -> None:
    # given the default setting
    clock = ClockSpec()
    # then the very edges are plausible and a microsecond beyond is not
    assert clock.refusal(NOW - dt.timedelta(days=30), NOW) is None
    assert clock.refusal(NOW + dt.timedelta(minutes=10), NOW) is None
    old = clock.refusal(NOW - dt.timedelta(days=30, microseconds=1), NOW)
    ahead = clock.refusal(NOW + dt.timedelta(minutes=10, microseconds=1), NOW)
    assert old is not None and old[0] == "too_old"
    assert ahead is not None and ahead[0] == "in_the_future"
