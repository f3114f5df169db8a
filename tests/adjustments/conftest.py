"""A programme whose BONUS adjustments above 10 000 wait for a second person."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM

CEILING_PROGRAM = TEST_PROGRAM.replace(
    "    transferable: true\n",
    '    transferable: true\n    adjust_approval_above: "10000"\n',
    1,
)
assert CEILING_PROGRAM != TEST_PROGRAM


@pytest.fixture
def ceiling(db: Database) -> Database:
    """The test programme, with BONUS adjustments above 10 000 needing approval."""
    with db.session() as session:
        spec = program_service.parse_program(CEILING_PROGRAM)
        program_service.apply_program(session, spec, actor="test")
        session.commit()
    program_service.invalidate_cache()
    return db


def new_member(client: TestClient, headers: dict[str, str], phone: str = "+79160000001") -> str:
    r = client.post("/api/v1/members", json={"phone": phone}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
