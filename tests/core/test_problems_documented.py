"""The OpenAPI document says what a refused request gets: ``application/problem+json``
naming each field (``core.errors.ProblemOut``), the body every 422 of the API has, not
FastAPI's ``HTTPValidationError``, which no caller ever receives."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kopilka.core.errors import PROBLEM_JSON, ProblemOut
from kopilka.main import create_app

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def test_every_422_is_documented_as_a_problem() -> None:
    # given the API's OpenAPI document
    spec = create_app().openapi()
    # when every operation's answers are read
    ops = _operations(spec)
    refused = [(m, p, op["responses"]["422"]) for m, p, op in ops if "422" in op["responses"]]
    # then each 422 is a problem, and FastAPI's validation error is nowhere
    assert len(refused) > 50
    wrong = [
        (m, p) for m, p, r in refused if r.get("content") != {PROBLEM_JSON: {"schema": PROBLEM}}
    ]
    assert wrong == []
    assert "HTTPValidationError" not in str(spec)
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "code"]
    assert problem["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/FieldErrorOut"
    }


def test_a_refused_receipt_is_the_documented_problem(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a receipt with a line whose quantity is not a number
    body = {
        "external_id": "BAD-1",
        "store": "msk-01",
        "occurred_at": "2026-12-05T12:00:00+03:00",
        "lines": [{"sku": "A", "category": "dairy", "quantity": "two", "unit_price": "1"}],
    }
    # when a till sends it
    r = client.post("/api/v1/purchases", json=body, headers=admin)
    # then it is refused with the documented problem, naming the field
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    problem = ProblemOut.model_validate(r.json())
    assert (problem.status, problem.code) == (422, "validation_error")
    assert problem.errors is not None
    assert [e.field for e in problem.errors] == ["lines[0].quantity"]
