"""FastJSONResponse renders the same bytes as Starlette's JSONResponse for what the API
answers with (no floats: amounts travel as strings)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from hypothesis import given
from hypothesis import strategies as st

from kopilka.core.responses import FastJSONResponse

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
payloads = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(payloads)
def test_the_same_bytes_as_json_response(payload: Any) -> None:
    assert FastJSONResponse(payload).body == JSONResponse(payload).body


def test_a_receipt_in_cyrillic() -> None:
    # given an answer with non-ASCII text, escapes and an empty list
    payload = {"name": 'Молоко 1 л "Домик"\n', "earned": [], "total_due": "179.80"}
    # then both render it the same, as UTF-8
    body = FastJSONResponse(payload, status_code=201).body
    assert body == JSONResponse(payload).body
    assert (
        body.decode("utf-8")
        == '{"name":"Молоко 1 л \\"Домик\\"\\n","earned":[],"total_due":"179.80"}'
    )
