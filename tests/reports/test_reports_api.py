"""The reports over HTTP (roles, CSV, validation) and the pure helpers under them."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from decimal import Decimal

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.core.db import Database
from kopilka.reports.jobs import run_rollup
from kopilka.spec.control_group import bucket_of, control_cut, in_control_group
from kopilka.web.admin.charts import nice_ticks
from tests.conftest import KeyFactory


def test_reports_list_and_roles(program: Database, client: TestClient, auth: KeyFactory) -> None:
    r = client.get("/api/v1/reports", headers=auth("analyst"))
    assert r.status_code == 200
    assert r.json()["reports"] == [
        "acquisition",
        "active",
        "campaigns",
        "challenges",
        "cohorts",
        "liability",
        "points",
        "receipts",
        "referrals",
        "roi",
        "tier_movement",
        "tiers",
    ]
    assert r.json()["rolled_up_at"] is None
    assert client.get("/api/v1/reports/receipts", headers=auth("cashier")).status_code == 403
    assert client.get("/api/v1/reports/receipts").status_code == 401


def test_a_report_as_json_and_as_csv(
    program: Database, client: TestClient, auth: KeyFactory, admin: dict[str, str]
) -> None:
    body = {
        "external_id": "R-1",
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": "2026-03-10T12:00:00+03:00",
        "lines": [{"sku": "A", "quantity": "2", "unit_price": "50.00"}],
    }
    assert client.post("/api/v1/purchases", json=body, headers=admin).status_code == 201
    run_rollup(full=True, settle_seconds=0)
    q = "from=2026-03-09&to=2026-03-11"
    r = client.get(f"/api/v1/reports/receipts?{q}", headers=auth("analyst"))
    assert r.status_code == 200
    doc = r.json()
    assert doc["filters"] == {
        "from": "2026-03-09",
        "to": "2026-03-11",
        "store": None,
        "channel": None,
        "tier": None,
        "grain": "day",
    }
    assert doc["ignored_filters"] == []
    assert [(i["period"], i["receipts"], i["revenue_anonymous"]) for i in doc["items"]] == [
        ("2026-03-09", 0, "0.00"),
        ("2026-03-10", 1, "100.00"),
        ("2026-03-11", 0, "0.00"),
    ]
    assert doc["summary"]["avg_receipt_anonymous"] == "100.00"
    r = client.get(f"/api/v1/reports/receipts?{q}&format=csv", headers=auth("analyst"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["period", "receipts", "receipts_with_card"]
    assert rows[2][:3] == ["2026-03-10", "1", "0"]
    r = client.get(
        f"/api/v1/reports/receipts?{q}", headers={**auth("analyst"), "Accept": "text/csv"}
    )
    assert r.text.splitlines()[0].startswith("period,receipts")


def test_bad_filters_name_each_parameter(
    program: Database, client: TestClient, auth: KeyFactory
) -> None:
    r = client.get(
        "/api/v1/reports/points?from=2026-05-01&to=2026-04-01&grain=hour&store=nope&channel=fax",
        headers=auth("analyst"),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert sorted(e["field"] for e in r.json()["errors"]) == ["channel", "from", "grain", "store"]
    r = client.get("/api/v1/reports/points?from=2020-01-01&to=2026-01-01", headers=auth("analyst"))
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "range"
    r = client.get("/api/v1/reports/nope", headers=auth("analyst"))
    assert (r.status_code, r.json()["code"]) == (404, "report_not_found")


@settings(max_examples=50, deadline=None)
@given(st.uuids(), st.decimals(min_value=0, max_value=Decimal("0.5"), places=4))
def test_raising_the_share_never_moves_a_member_out(member: uuid.UUID, share: Decimal) -> None:
    bigger = min(Decimal("0.5"), share + Decimal("0.1"))
    if in_control_group(member, share):
        assert in_control_group(member, bigger)
    assert in_control_group(member, share) == (bucket_of(member) < control_cut(share))
    assert not in_control_group(member, Decimal(0))


def test_the_control_group_is_about_the_share_asked() -> None:
    ids = [uuid.UUID(int=i * 7919 + 13) for i in range(20_000)]
    inside = sum(in_control_group(m, Decimal("0.1")) for m in ids)
    assert 1_800 <= inside <= 2_200  # 10 % ± 1 point (binomial sd ≈ 42)
    assert bucket_of(ids[0]) == bucket_of(uuid.UUID(int=13))  # stable


@given(st.floats(min_value=0.001, max_value=1e9, allow_nan=False))
def test_ticks_cover_the_top_in_round_steps(top: float) -> None:
    ticks = nice_ticks(top)
    assert ticks[0] == 0 and ticks[-1] >= top
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
