"""Fuzzing the whole API from its own OpenAPI document (schemathesis, bounded in time).

Every operation gets generated requests, valid and invalid, with an admin key; no answer
may be a 5xx, and every answer must match the schema the operation declares. The run is
bounded by ``MAX_EXAMPLES`` per operation (``KOPILKA_FUZZ_EXAMPLES`` raises it for a long
run by hand).

Requests made of random values alone stop at the first lookup (no such store, member,
purchase), so the generated values are mixed, some of the time, with what exists (a
member, a receipt, a hold, a coupon pool and its codes, a webhook, a custom event, a
key) and with the values at the edges of what the API takes (the calendar's ends, the
largest quantity and price). That is how the 500s of issue 19 would have been found:
random values reach neither the rules engine with a year-0 date nor the database with a
cursor beyond 2^63.

Generated receipts seldom pass validation, so a valid request to each of the richest
operations (calculate, confirm, hold, commit, cancel, return, simulate, …) checks their
successful answers against their schemas too (``VALID``). The response models declare
``additionalProperties: false``: an answer with a key its model does not name fails.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from kopilka.core.db import Database, now
from kopilka.main import create_app

MAX_EXAMPLES = int(os.environ.get("KOPILKA_FUZZ_EXAMPLES", "8"))

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app())

# What exists, by the name a path, a query or a body gives it (filled by ``world``).
KNOWN: dict[str, list[Any]] = {}
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
EDGE_DAYS = ["0001-01-01", "9999-12-31"]
# Values at the edges of what the API takes, by field name (bodies and queries).
EDGES: dict[str, list[Any]] = {
    "occurred_at": EDGE_TIMES,
    "valid_from": EDGE_TIMES,
    "valid_until": EDGE_TIMES,
    "expires_at": EDGE_TIMES,
    "until": EDGE_TIMES,
    "since": EDGE_TIMES,
    "as_of": EDGE_TIMES,
    "joined_at": EDGE_TIMES,
    "birth_date": EDGE_DAYS,
    "from": EDGE_DAYS,
    "to": EDGE_DAYS,
    "quantity": ["999999999.999", "0.001"],
    "unit_price": ["9999999999999.99", "0"],
    "amount": ["9999999999999.9999", "-9999999999999.9999", "0.0001", "max"],
    "value": ["9999999999999.9999", "100"],
    "cursor": ["9" * 32],
    "currency": ["BONUS", "STAMP", "RUB"],
    "store": ["msk-01", "p-store"],
}


def _choices(name: str) -> list[Any]:
    known = {
        "member": [{"id": m} for m in KNOWN.get("member_id", [])]
        + [{"card": c} for c in KNOWN.get("card", [])],
        "coupons": [KNOWN.get("code", [])],
        "occurred_at": [now().isoformat()],
        "member_id": KNOWN.get("member_id", []),
    }
    return known.get(name, []) + EDGES.get(name, [])


def _mixed(name: str, value: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """``value`` as generated, or (for some names) what exists or an edge value; inside
    objects and lists too."""
    if isinstance(value, dict) and depth < 3:
        inner = st.fixed_dictionaries({k: _mixed(k, v, depth + 1) for k, v in value.items()})
        return st.one_of(inner, st.sampled_from(_choices(name))) if _choices(name) else inner
    if isinstance(value, list) and value and depth < 3:
        return st.tuples(*(_mixed(name, v, depth + 1) for v in value)).map(list)
    return st.sampled_from([value, *_choices(name)])


@schema.hook("flatmap_path_parameters")
def _path(context: Any, params: Any) -> st.SearchStrategy[Any]:
    if not isinstance(params, dict):
        return st.just(params)
    return st.fixed_dictionaries(
        {k: st.sampled_from([v, *KNOWN.get(k, [])]) for k, v in params.items()}
    )


@schema.hook("flatmap_query")
def _query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    if not isinstance(query, dict):
        return st.just(query)
    return st.fixed_dictionaries({k: _mixed(k, v, 1) for k, v in query.items()})


@schema.hook("flatmap_body")
def _body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _mixed("", body)


@pytest.fixture
def world(program: Database, client: TestClient, admin: dict[str, str]) -> None:
    """A member with points, a receipt and a hold, a coupon pool with codes, a webhook, a
    custom event; their ids in ``KNOWN``."""
    KNOWN.clear()

    def post(path: str, body: dict[str, Any]) -> Any:
        r = client.post(path, json=body, headers=admin)
        assert r.status_code in (200, 201), (path, r.text)
        return r.json()

    member = post("/api/v1/members", {"phone": "+79165550000", "birth_date": "1990-02-28"})
    post(
        f"/api/v1/members/{member['id']}/adjustments",
        {"currency": "BONUS", "amount": "500", "reason": "the fuzzer's"},
    )
    receipt = {
        "store": "msk-01",
        "member": {"id": member["id"]},
        "occurred_at": now().isoformat(),
        "lines": [{"sku": "A", "category": "dairy", "quantity": "2", "unit_price": "100.00"}],
    }
    bought = post("/api/v1/purchases", {**receipt, "external_id": "F-1"})
    held = post("/api/v1/purchases", {**receipt, "external_id": "F-2", "hold": True})
    pool = post("/api/v1/coupon-pools", {"name": "F", "reward": {"kind": "percent", "value": "5"}})
    post(f"/api/v1/coupon-pools/{pool['id']}/generate", {"count": 2})
    codes = client.get(f"/api/v1/coupon-pools/{pool['id']}/codes", headers=admin).json()
    hook = post("/api/v1/webhooks", {"url": "https://example.com/hook", "events": ["*"]})
    event = {"type": "clothes_recycled", "external_id": "F-E", "occurred_at": now().isoformat()}
    recorded = post("/api/v1/events", {**event, "member": {"id": member["id"]}})
    keys = client.get("/api/v1/apikeys", headers=admin).json()["items"]
    KNOWN.update(
        member_id=[member["id"]],
        card=[member["card_number"]],
        purchase_id=[bought["id"], held["id"]],
        pool_id=[pool["id"]],
        code=[c["code"] for c in codes["items"]],
        webhook_id=[hook["id"]],
        event_id=[recorded["id"]],
        key_id=[k["id"] for k in keys],
        key=["base-earn"],
        name=["active", "cohorts", "receipts", "points", "liability", "roi"],
    )


@pytest.mark.usefixtures("world")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_answers_match_their_schema(
    case: schemathesis.Case, admin: dict[str, str]
) -> None:
    case.call_and_validate(headers=admin, checks=[not_a_server_error, response_schema_conformance])


# Generated requests seldom pass validation on the richest operations (a receipt needs a
# store, lines and a date that fit together), so their successful answers would go
# unchecked; one valid request each holds those answers to their schemas as well.
def _receipt(external_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "store": "msk-01",
        "member": {"id": KNOWN["member_id"][0]},
        "occurred_at": now().isoformat(),
        "lines": [
            {"sku": "A", "name": "A", "category": "dairy", "quantity": "2", "unit_price": "100"},
            {"sku": "B", "category": "grocery", "quantity": "1", "unit_price": "50.50"},
        ],
        **extra,
    }


def _purchase(i: int) -> dict[str, Any]:
    return {"purchase_id": KNOWN["purchase_id"][i]}


VALID: dict[str, tuple[str, str, Any]] = {
    "calculate": (
        "POST",
        "/api/v1/purchases/calculate",
        lambda: {
            "body": _receipt(
                "V-1",
                redeem={"currency": "BONUS", "amount": "100000"},
                coupons=[KNOWN["code"][0], "NO-SUCH-CODE"],
            )
        },
    ),
    "confirm": (
        "POST",
        "/api/v1/purchases",
        lambda: {"body": _receipt("V-2", redeem={"currency": "BONUS", "amount": "max"})},
    ),
    "hold": ("POST", "/api/v1/purchases", lambda: {"body": _receipt("V-3", hold=True)}),
    "commit": (
        "POST",
        "/api/v1/purchases/{purchase_id}/commit",
        lambda: {"path_parameters": _purchase(1), "body": {"receipt_number": "9"}},
    ),
    "cancel": (
        "POST",
        "/api/v1/purchases/{purchase_id}/cancel",
        lambda: {"path_parameters": _purchase(0)},
    ),
    "return": (
        "POST",
        "/api/v1/purchases/{purchase_id}/returns",
        lambda: {
            "path_parameters": _purchase(0),
            "body": {"external_id": "V-R", "lines": [{"line_no": 1, "quantity": "1"}]},
        },
    ),
    "simulate": (
        "POST",
        "/api/v1/rules/simulate",
        lambda: {"body": {"receipts": [_receipt("V-4"), {**_receipt("V-5"), "member": None}]}},
    ),
    "webhook": (
        "POST",
        "/api/v1/webhooks",
        lambda: {"body": {"url": "https://example.com/v", "events": ["purchase.confirmed"]}},
    ),
    "pool": (
        "POST",
        "/api/v1/coupon-pools",
        lambda: {"body": {"name": "V", "reward": {"kind": "fixed", "value": "100"}}},
    ),
    "personal codes": (
        "POST",
        "/api/v1/coupon-pools/{pool_id}/personal-codes",
        lambda: {
            "path_parameters": {"pool_id": KNOWN["pool_id"][0]},
            "body": {"member_ids": KNOWN["member_id"]},
        },
    ),
    "report": (
        "GET",
        "/api/v1/reports/{name}",
        lambda: {"path_parameters": {"name": "receipts"}, "query": {"store": "msk-01"}},
    ),
}


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_request_answers_what_its_schema_says(name: str, admin: dict[str, str]) -> None:
    # given a valid request to an operation whose generated requests seldom are
    method, path, request = VALID[name]
    case = schema[path][method].Case(**request())
    # when it is sent
    response = case.call(headers=admin)
    # then it succeeds and its answer matches the schema the operation declares
    assert response.status_code in (200, 201), response.text
    case.validate_response(response, checks=[response_schema_conformance])
