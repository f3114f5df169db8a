"""Fuzzing the whole API from its own OpenAPI document (schemathesis, bounded in time).

Every operation gets generated requests, valid and invalid, with an admin key; no answer
may be a 5xx, and every answer must match the schema the operation declares. The run is
bounded by ``MAX_EXAMPLES`` per operation (well under a minute for the whole API).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from kopilka.main import create_app

MAX_EXAMPLES = 8

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app())


@pytest.mark.usefixtures("program")
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
