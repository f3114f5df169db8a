"""The console: adjustments above the ceiling wait on the member's page and under
Approvals, where a manager other than the requester approves or rejects them."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.main import create_app
from kopilka.program import service as program_service
from tests.adjustments.conftest import CEILING_PROGRAM
from tests.console.test_console import csrf_of, make_user, member, sign_in


@pytest.fixture
def ceiling(db: Database) -> Database:
    with db.session() as session:
        program_service.apply_program(
            session, program_service.parse_program(CEILING_PROGRAM), actor="test"
        )
        session.commit()
    program_service.invalidate_cache()
    return db


def balance(client: TestClient, member_id: str) -> str:
    page = client.get(f"/admin/members/{member_id}").text
    found = re.search(r'data-testid="balance">([^<]+)<', page)
    assert found, page[:2000]
    return found.group(1)


def test_a_supports_large_adjustment_waits_until_a_manager_approves_it(
    ceiling: Database, client: TestClient
) -> None:
    # given a member and a support operator signed in
    member_id = member(ceiling)
    sign_in(client, make_user(ceiling, "support", "support@example.com"))
    page = client.get(f"/admin/members/{member_id}")
    # when they adjust by 50 000 (above the 10 000 ceiling)
    form = {"currency": "BONUS", "amount": "50 000", "reason": "Lost receipts, checked"}
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={**form, "csrf": csrf_of(page.text), "key": "k1"},
        follow_redirects=False,
    )
    # then they are told it waits, the balance has not moved, and it is listed as theirs,
    # without an approve button (support may not approve)
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/admin/members/{member_id}?done=adjust_pending",
    )
    page = client.get(r.headers["location"])
    assert "Sent for approval" in page.text
    assert balance(client, member_id) == "0.00"
    assert 'data-testid="pending-adjustments"' in page.text and "50,000.00 BONUS" in page.text
    assert 'data-testid="own-request"' in page.text and 'data-testid="approve"' not in page.text
    queue = client.get("/admin/adjustments")
    assert queue.status_code == 200 and "Lost receipts, checked" in queue.text
    adj_id = re.search(r'data-adjustment="([^"]+)"', queue.text).group(1)  # type: ignore[union-attr]
    forbidden = client.post(
        f"/admin/adjustments/{adj_id}/approve", data={"csrf": csrf_of(queue.text)}
    )
    assert forbidden.status_code == 403
    # when a manager signs in and approves it from the member's page
    manager = TestClient(create_app(), raise_server_exceptions=False)
    with manager:
        sign_in(manager, make_user(ceiling, "manager", "manager@example.com"))
        page = manager.get(f"/admin/members/{member_id}")
        assert 'data-testid="approve"' in page.text
        r = manager.post(
            f"/admin/adjustments/{adj_id}/approve",
            data={"csrf": csrf_of(page.text), "next": f"/admin/members/{member_id}"},
            follow_redirects=False,
        )
        # then it is posted, and the page says so
        assert (r.status_code, r.headers["location"]) == (
            303,
            f"/admin/members/{member_id}?done=adjust_approved",
        )
        assert "Adjustment approved and posted." in manager.get(r.headers["location"]).text
        assert balance(manager, member_id) == "50,000.00"
        assert 'data-testid="nothing-pending"' in manager.get("/admin/adjustments").text
    with ceiling.session() as s:
        posted = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.adjust")).one()
    assert posted.actor.startswith("user:") and posted.details is not None
    assert posted.details["approved_by"].startswith("user:")
    assert posted.details["approved_by"] != posted.actor


def test_a_manager_cannot_approve_their_own_and_another_rejects_it(
    ceiling: Database, client: TestClient
) -> None:
    # given a manager's own adjustment above the ceiling
    member_id = member(ceiling)
    sign_in(client, make_user(ceiling, "manager", "manager@example.com"))
    page = client.get(f"/admin/members/{member_id}")
    client.post(
        f"/admin/members/{member_id}/adjust",
        data={
            "currency": "BONUS",
            "amount": "-20000",
            "reason": "Duplicate credit",
            "csrf": csrf_of(page.text),
            "key": "k2",
        },
    )
    # when they open Approvals; then their own has no approve button
    queue = client.get("/admin/adjustments", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Корректировки на одобрении" in queue.text and "Одобрения" in queue.text
    assert 'data-testid="own-request"' in queue.text and 'data-testid="approve"' not in queue.text
    adj_id = re.search(r'data-adjustment="([^"]+)"', queue.text).group(1)  # type: ignore[union-attr]
    # and approving it anyway is refused, saying why
    r = client.post(f"/admin/adjustments/{adj_id}/approve", data={"csrf": csrf_of(queue.text)})
    assert r.status_code == 403
    assert "someone other than the requester must approve it" in r.text
    # when an admin rejects it without a reason; then the error is shown
    admin = TestClient(create_app(), raise_server_exceptions=False)
    with admin:
        sign_in(admin, make_user(ceiling, "admin", "admin@example.com"))
        queue = admin.get("/admin/adjustments")
        r = admin.post(
            f"/admin/adjustments/{adj_id}/reject",
            data={"csrf": csrf_of(queue.text), "reason": " "},
        )
        assert r.status_code == 422 and "reason: say why" in r.text
        # when with a reason; then it is closed and nothing moved
        r = admin.post(
            f"/admin/adjustments/{adj_id}/reject",
            data={"csrf": csrf_of(queue.text), "reason": "It was not a duplicate"},
            follow_redirects=False,
        )
        assert (r.status_code, r.headers["location"]) == (
            303,
            "/admin/adjustments?done=adjust_rejected",
        )
        assert "Adjustment rejected." in admin.get(r.headers["location"]).text
        assert balance(admin, member_id) == "0.00"
    with ceiling.session() as s:
        actions = s.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("ledger.%"))
            .order_by(AuditEntry.occurred_at)
        ).all()
    assert actions == ["ledger.adjust_request", "ledger.adjust_reject"]
