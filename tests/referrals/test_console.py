"""The console's Referrals screen: the dashboard of the known set (tests/referrals/
dataset.py) with its CSV, and the review queue where a manager or support approves or
rejects a flagged referral with a reason (CSRF, audited by the service); who sees what."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database
from kopilka.main import create_app
from tests.conftest import Clock
from tests.console.test_console import csrf_of, make_user, sign_in
from tests.referrals import dataset
from tests.referrals.conftest import Enrol
from tests.referrals.test_lifecycle import balance, friends, ledger_holds

RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
PERIOD = "from=2026-11-30&to=2026-12-20"


def test_the_dashboard_shows_the_funnel_outcomes_cost_revenue_and_the_csv(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given the known set and an analyst signed in
    dataset.make(client, db, admin, enrol, referrals)
    sign_in(client, make_user(db, "analyst", "analyst@example.com"))
    # when they open Referrals for three weeks, in Russian
    page = client.get(f"/admin/referrals?{PERIOD}", headers=RU)
    # then the funnel, its weeks, reasons in words, the cost and the revenue are there
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="nav-referrals"' in html and "Рефералы" in html
    assert 'data-testid="chart-referral-funnel"' in html
    assert html.count('class="bar"') >= 12  # 4 steps x 3 weeks
    row = re.search(r'<tr data-week="2026-W49">(.*?)</tr>', html, re.S)
    assert row and re.findall(r'class="num">([^<]+)<', row.group(1)) == ["7", "5", "3", "0"]
    assert "приглашение самого себя" in html and "покупка отменена" in html
    assert re.search(r'data-testid="referral-cost-total">185,00<', html)
    referred = re.search(r'<tr data-group="referred">(.*?)</tr>', html, re.S)
    assert referred and "1\u202f316,67" in referred.group(1)
    # the analyst does not review: no queue
    assert 'data-testid="review-queue"' not in html
    # and the CSV link answers the same file as the API
    assert f'href="/admin/referrals.csv?{PERIOD}"' in html.replace("&amp;", "&")
    csv = client.get(f"/admin/referrals.csv?{PERIOD}")
    api = client.get(f"/api/v1/reports/referrals.csv?{PERIOD}", headers=admin)
    assert csv.status_code == 200 and csv.content == api.content
    assert csv.content.startswith("\ufeffweek;week_start;".encode())
    # a bad date is said on the page
    bad = client.get("/admin/referrals?from=2026-02-30")
    assert bad.status_code == 422 and "from" in bad.text


def test_support_approves_one_and_rejects_another_with_a_reason(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, referrals: Clock
) -> None:
    # given the known set (Lena and Sasha wait for a review) and support signed in
    data = dataset.make(client, db, admin, enrol, referrals)
    sign_in(client, make_user(db, "support", "support@example.com"))
    page = client.get("/admin/referrals")
    # then support sees the queue (not the dashboard): friends, referrer, flags in words
    assert page.status_code == 200, page.text
    assert 'data-testid="referral-dashboard"' not in page.text
    rows = re.findall(r'<tr data-referral="([^"]+)">(.*?)</tr>', page.text, re.S)
    assert [("Елена Кузнецова" in r, "Саша Белов" in r) for _, r in rows] == [
        (True, False),
        (False, True),
    ]
    assert all("Анна Петрова" in r for _, r in rows)
    assert "many friends of one referrer in a day" in rows[0][1]
    assert "a throwaway mailbox" in rows[1][1] and "qualified" in rows[0][1]
    lena_ref, sasha_ref = rows[0][0], rows[1][0]
    token = csrf_of(page.text)
    # when a form comes without the CSRF token: refused
    assert client.post(f"/admin/referrals/{lena_ref}/approve", data={}).status_code == 422
    refused = client.post(f"/admin/referrals/{lena_ref}/approve", data={"csrf": "x" * 20})
    assert refused.status_code == 403
    # when a reject has no reason worth the name: said, nothing changes
    short = client.post(
        f"/admin/referrals/{sasha_ref}/reject", data={"csrf": token, "reason": " x "}
    )
    assert short.status_code == 422 and 'data-testid="review-error"' in short.text
    # when Lena is approved and Sasha rejected with a reason
    r = client.post(
        f"/admin/referrals/{lena_ref}/approve", data={"csrf": token}, follow_redirects=False
    )
    assert (r.status_code, r.headers["location"]) == (
        303,
        "/admin/referrals?done=referral_approved#review",
    )
    r = client.post(
        f"/admin/referrals/{sasha_ref}/reject",
        data={"csrf": token, "reason": "Same person as the referrer"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(r.headers["location"])
    assert "Referral rejected." in done.text and 'data-testid="nothing-to-review"' in done.text
    # then Lena has her 200 (the hold is over: available at once, beside the 55 her
    # receipt earned), Sasha's referral is rejected on review
    assert balance(client, admin, data.lena["id"]) == ("255.00", "0.00")
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, data.anna["id"])}
    assert (by_friend[data.sasha["id"]]["status"], by_friend[data.sasha["id"]]["reason"]) == (
        "rejected",
        "review_rejected",
    )
    # and both are in the audit log, by the support user
    with db.session() as s:
        rows_ = s.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.action.in_(("referral.approve", "referral.reject")))
            .order_by(AuditEntry.id)
        ).all()
    assert [a for a, _, _ in rows_] == ["referral.approve", "referral.reject"]
    assert all(actor.startswith("user:") for _, actor, _ in rows_)
    assert rows_[1][2] == {"reason": "Same person as the referrer"}
    # approving again answers the page with the problem
    again = client.post(f"/admin/referrals/{lena_ref}/approve", data={"csrf": token})
    assert again.status_code == 409 and 'data-testid="review-error"' in again.text
    ledger_holds(db)


def test_roles_meet_the_screen_as_declared(
    client: TestClient, db: Database, referrals: Clock
) -> None:
    # an analyst may not post a review; a manager sees both parts
    sign_in(client, make_user(db, "analyst", "analyst@example.com"))
    page = client.get("/admin/referrals")
    assert page.status_code == 200
    missing = "00000000-0000-7000-8000-000000000000"
    r = client.post(f"/admin/referrals/{missing}/approve", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403
    with TestClient(create_app(), raise_server_exceptions=False) as manager:
        sign_in(manager, make_user(db, "manager", "manager@example.com"))
        page = manager.get("/admin/referrals")
        assert 'data-testid="referral-dashboard"' in page.text
        assert 'data-testid="nothing-to-review"' in page.text
        # an unknown referral is a page of its own
        gone = manager.post(
            f"/admin/referrals/{missing}/approve", data={"csrf": csrf_of(page.text)}
        )
        assert gone.status_code == 404
    with TestClient(create_app(), raise_server_exceptions=False) as support:
        sign_in(support, make_user(db, "support", "support2@example.com"))
        assert support.get("/admin/referrals.csv").status_code == 403
