"""Helpers for custom-events tests: a programme with event rules, members, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import update

from kopilka.core.db import Database
from kopilka.members.models import Member
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM

EVENT_TYPES = ["clothes_recycled", "jar_returned", "event_checkin", "profile_completed"]

UseRules = Callable[..., None]
Enrol = Callable[..., dict[str, Any]]
Send = Callable[..., Any]


def program_text(rules: list[dict[str, Any]], types: list[str] | None = EVENT_TYPES) -> str:
    doc = yaml.safe_load(TEST_PROGRAM)
    doc["event_rules"] = rules
    if types is not None:
        doc["event_types"] = types
    return yaml.safe_dump(doc, allow_unicode=True)


@pytest.fixture
def use_rules(program: Database) -> UseRules:
    """``use_rules([...], types=[...])``: the test programme with these event rules."""

    def apply(rules: list[dict[str, Any]], types: list[str] | None = EVENT_TYPES) -> None:
        spec = program_service.parse_program(program_text(rules, types))
        with program.session() as s:
            program_service.apply_program(s, spec, actor="test")
            s.commit()
        program_service.invalidate_cache()

    return apply


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], program: Database) -> Enrol:
    """A new member (``tier``/``status`` set directly when given)."""
    n = iter(range(10_000))

    def make(tier: str | None = None, status: str | None = None) -> dict[str, Any]:
        r = client.post("/api/v1/members", json={"phone": f"+7916777{next(n):04d}"}, headers=admin)
        assert r.status_code == 201, r.text
        m: dict[str, Any] = r.json()
        values = {k: v for k, v in (("tier", tier), ("status", status)) if v is not None}
        if values:
            with program.session() as s:
                s.execute(update(Member).where(Member.id == uuid.UUID(m["id"])).values(**values))
                s.commit()
        return m

    return make


def event(
    member_id: str,
    external_id: str,
    type: str = "jar_returned",
    occurred_at: str = "2026-11-20T10:00:00+03:00",
    **properties: Any,
) -> dict[str, Any]:
    return {
        "member": {"id": member_id},
        "type": type,
        "external_id": external_id,
        "occurred_at": occurred_at,
        "properties": properties,
    }
