"""The console: sign-in with password and TOTP, lockout, CSRF, roles, member actions."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kopilka.audit.models import AuditEntry
from kopilka.console import service as console
from kopilka.console.models import ConsoleSession
from kopilka.core.db import Database, now
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import create_member
from kopilka.users.models import User
from kopilka.users.service import create_user
from kopilka.web.admin.i18n import fmt_number, pick_lang
from kopilka.web.admin.views.members import guess_field

PASSWORD = "correct horse battery"


def make_user(db: Database, role: str = "admin", email: str = "ops@example.com") -> str:
    with db.session() as s:
        create_user(s, email, role, PASSWORD)
        s.commit()
    return email


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )


def member(db: Database, phone: str = "+79161234567") -> str:
    with db.session() as s:
        m = create_member(s, MemberCreate(phone=phone, name="Анна Петрова"), "RU")
        s.commit()
        return str(m.id)


def test_pages_need_a_session(program: Database, client: TestClient) -> None:
    r = client.get("/admin/members?q=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/login?next=/admin/members%3Fq%3D1"


def test_sign_in_and_out(program: Database, client: TestClient) -> None:
    email = make_user(program)
    r = sign_in(client, email)
    assert (r.status_code, r.headers["location"]) == (303, "/admin")
    cookie = r.cookies.get(console.COOKIE)
    assert cookie and "httponly" in r.headers["set-cookie"].lower()
    with program.session() as s:
        row = s.get(ConsoleSession, console._digest(cookie))
        assert row is not None and row.stage == "full"  # only the digest is stored
    page = client.get("/admin/members")
    assert page.status_code == 200 and email in page.text
    r = client.post("/admin/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.set(console.COOKIE, cookie)
    assert client.get("/admin/members", follow_redirects=False).status_code == 303
    with program.session() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.occurred_at)).all()
    assert [a for a in actions if a.startswith("console.")] == [
        "console.sign_in",
        "console.sign_out",
    ]


def test_wrong_password_and_unknown_email_answer_alike(
    program: Database, client: TestClient
) -> None:
    email = make_user(program)
    wrong = sign_in(client, email, "not the password")
    nobody = sign_in(client, "nobody@example.com", "whatever-123")
    assert wrong.status_code == nobody.status_code == 401
    assert "Wrong email or password" in wrong.text and "Wrong email or password" in nobody.text
    assert console.COOKIE not in wrong.cookies


def test_lockout_after_repeated_failures(program: Database, client: TestClient) -> None:
    email = make_user(program)
    for _ in range(console.MAX_FAILURES - 1):
        assert sign_in(client, email, "nope-nope-nope").status_code == 401
    locked = sign_in(client, email, "nope-nope-nope")
    assert locked.status_code == 423
    assert "Too many failed attempts" in locked.text
    # even the right password is refused until the lock runs out
    assert sign_in(client, email).status_code == 423
    with program.session() as s:
        s.execute(update(User).values(locked_until=now() - dt.timedelta(seconds=1)))
        s.commit()
        assert s.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "console.locked")
        ).all()
    assert sign_in(client, email).status_code == 303


def test_sign_in_form_needs_its_csrf_token(program: Database, client: TestClient) -> None:
    email = make_user(program)
    client.get("/admin/login")
    r = client.post("/admin/login", data={"email": email, "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403


def test_totp_enrolment_and_two_step_sign_in(program: Database, client: TestClient) -> None:
    email = make_user(program)
    sign_in(client, email)
    page = client.get("/admin/account")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    assert "<svg" in page.text  # the QR code
    wrong = client.post("/admin/account/totp", data={"code": "000000", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 422
    r = client.post(
        "/admin/account/totp",
        data={"code": pyotp.TOTP(secret).now(), "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    client.cookies.clear()
    r = sign_in(client, email)
    assert r.headers["location"].startswith("/admin/login/totp")
    assert client.get("/admin/members", follow_redirects=False).status_code == 303  # not yet
    form = client.get("/admin/login/totp")
    code = pyotp.TOTP(secret).at(int(time.time()) + 30)  # the next step is accepted too
    bad = client.post("/admin/login/totp", data={"code": "123456", "csrf": csrf_of(form.text)})
    assert bad.status_code == 401
    r = client.post(
        "/admin/login/totp",
        data={"code": code, "csrf": csrf_of(form.text), "next": "/admin/members"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, "/admin/members")
    assert client.get("/admin/members").status_code == 200
    # the same code does not sign in a second time (no replay)
    client.cookies.clear()
    sign_in(client, email)
    form = client.get("/admin/login/totp")
    again = client.post("/admin/login/totp", data={"code": code, "csrf": csrf_of(form.text)})
    assert again.status_code == 401


def test_idle_sessions_end(program: Database, client: TestClient) -> None:
    email = make_user(program)
    sign_in(client, email)
    with program.session() as s:
        s.execute(update(ConsoleSession).values(last_seen_at=now() - console.IDLE))
        s.commit()
    assert client.get("/admin/members", follow_redirects=False).status_code == 303


def test_find_by_phone_adjust_and_see_it_in_ledger_and_audit(
    program: Database, client: TestClient
) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "support"))
    r = client.get("/admin/members?q=8 916 123-45-67")
    assert str(r.url).endswith(f"/admin/members/{member_id}")  # one hit: straight to it
    form = {"currency": "BONUS", "amount": "150,50", "reason": "Lost receipt, checked"}
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={**form, "csrf": csrf_of(r.text), "key": "k1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/admin/members/{member_id}")
    assert re.search(r'data-testid="balance">150\.50<', page.text)
    assert "Lost receipt, checked" in page.text
    # the same form sent twice adjusts once
    client.post(
        f"/admin/members/{member_id}/adjust", data={**form, "csrf": csrf_of(page.text), "key": "k1"}
    )
    assert re.search(
        r'data-testid="balance">150\.50<', client.get(f"/admin/members/{member_id}").text
    )
    with program.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.adjust")).one()
    assert entry.actor.startswith("user:")
    assert entry.details["reason"] == "Lost receipt, checked"
    assert (entry.before["available"], entry.after["available"]) == ("0.00", "150.50")


def test_adjust_errors_are_shown_and_change_nothing(program: Database, client: TestClient) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "manager"))
    page = client.get(f"/admin/members/{member_id}")
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={
            "currency": "BONUS",
            "amount": "-5",
            "reason": "oops",
            "csrf": csrf_of(page.text),
            "key": "k2",
        },
    )
    assert r.status_code == 422 and "amount: more than the available balance" in r.text
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={
            "currency": "BONUS",
            "amount": "abc",
            "reason": "oops",
            "csrf": csrf_of(page.text),
            "key": "k3",
        },
    )
    assert r.status_code == 422 and "amount: a number" in r.text
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={"currency": "BONUS", "amount": "5", "reason": "x", "csrf": "stale", "key": "k4"},
    )
    assert r.status_code == 403
    with program.session() as s:
        assert not s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.adjust")).all()


def test_roles(program: Database, client: TestClient) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "analyst"))
    page = client.get(f"/admin/members/{member_id}")
    assert page.status_code == 200 and 'data-testid="adjust-form"' not in page.text
    r = client.post(
        f"/admin/members/{member_id}/adjust",
        data={
            "currency": "BONUS",
            "amount": "5",
            "reason": "why not",
            "csrf": csrf_of(page.text),
            "key": "k",
        },
    )
    assert r.status_code == 403
    assert client.get("/admin/dashboards").status_code == 200
    assert client.get("/admin/audit").status_code == 403
    client.cookies.clear()
    sign_in(client, make_user(program, "support", "desk@example.com"))
    assert client.get("/admin/dashboards").status_code == 403
    assert client.get("/admin/programme").status_code == 403


def test_block_and_unblock(program: Database, client: TestClient) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "support"))
    page = client.get(f"/admin/members/{member_id}")
    r = client.post(
        f"/admin/members/{member_id}/status",
        data={"status": "blocked", "reason": "fraud check", "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert 'data-testid="member-status">blocked<' in client.get(f"/admin/members/{member_id}").text
    client.post(
        f"/admin/members/{member_id}/status", data={"status": "active", "csrf": csrf_of(page.text)}
    )
    with program.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.status")).all()
    assert [(r.before, r.after) for r in rows] == [
        ({"status": "active"}, {"status": "blocked"}),
        ({"status": "blocked"}, {"status": "active"}),
    ]


def test_programme_errors_by_path_simulate_and_publish(
    program: Database, client: TestClient
) -> None:
    sign_in(client, make_user(program))
    page = client.get("/admin/programme")
    import html

    yaml_text = html.unescape(
        re.search(r'data-testid="programme-draft">([^<]*)<', page.text).group(1)
    )
    bad = yaml_text.replace("precision: 2", "precision: 9", 1)
    r = client.post(
        "/admin/programme",
        data={"csrf": csrf_of(page.text), "action": "publish", "draft": bad, "receipt": "{}"},
    )
    assert r.status_code == 422 and "currencies[0].precision" in r.text
    draft = yaml_text.replace("percent: '5'", "percent: '7'")
    receipt = (
        '{"store": "msk-01", "member": {}, '
        '"lines": [{"sku": "A", "quantity": "1", "unit_price": "100.00"}]}'
    )
    r = client.post(
        "/admin/programme",
        data={"csrf": csrf_of(page.text), "action": "simulate", "draft": draft, "receipt": receipt},
    )
    assert r.status_code == 200
    assert 'data-testid="rule-fired"><strong>Base earn</strong> — earn: 7.00 BONUS' in r.text
    r = client.post(
        "/admin/programme",
        data={"csrf": csrf_of(page.text), "action": "publish", "draft": draft, "receipt": receipt},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, "/admin/programme?done=applied:2")
    with program.session() as s:
        audit = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "program.apply")
            .order_by(AuditEntry.occurred_at.desc())
        ).first()
    assert audit is not None and audit.actor.startswith("user:")
    assert (audit.before["version"], audit.after["version"]) == (1, 2)
    assert audit.details == {"changed": ["rules"]}


def test_console_session_reaches_the_api_with_csrf_for_writes(
    program: Database, client: TestClient
) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "manager"))
    assert client.get(f"/api/v1/members/{member_id}/balances").status_code == 200
    body = {"currency": "BONUS", "amount": "1.00", "reason": "api test"}
    r = client.post(f"/api/v1/members/{member_id}/adjustments", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "csrf_invalid")
    page = client.get("/admin/members")
    r = client.post(
        f"/api/v1/members/{member_id}/adjustments",
        json=body,
        headers={"X-CSRF-Token": csrf_of(page.text)},
    )
    assert r.status_code == 201


def test_dashboards_and_csv_render(program: Database, client: TestClient) -> None:
    sign_in(client, make_user(program))
    page = client.get("/admin/dashboards?grain=week", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert page.status_code == 200
    assert "Дашборды" in page.text and 'data-testid="chart-acquisition"' in page.text
    r = client.get("/admin/dashboards?from=bad")
    assert r.status_code == 422 and "from: a date as YYYY-MM-DD" in r.text
    csv_r = client.get("/admin/reports/points.csv?grain=month")
    assert csv_r.status_code == 200 and csv_r.text.startswith("period,currency,issued")


@pytest.mark.parametrize(
    ("q", "field"),
    [
        ("+7 916 123-45-67", "phone"),
        ("anna@example.com", "email"),
        ("4600000000003", "phone"),
        ("DEMO-00001", "external_id"),
        ("Анна Петрова", "name"),
    ],
)
def test_search_guesses_the_field(q: str, field: str) -> None:
    assert guess_field(q) == field


def test_language_and_numbers() -> None:
    assert pick_lang("ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert pick_lang("en-GB,ru;q=0.5") == "en"
    assert pick_lang("de-DE,ru;q=0.7") == "ru"
    assert pick_lang(None) == "en"
    from decimal import Decimal

    assert fmt_number(Decimal("1234567.5"), "ru") == "1\u202f234\u202f567,50"
    assert fmt_number(Decimal("-1234.567"), "en") == "-1,234.57"


# ---------------------------------------------------------------------------- member contact


@pytest.fixture
def code_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Messages to members go to this file (the ``file`` channel of sign-in codes)."""
    from kopilka.core.config import reset_settings_cache

    path = tmp_path / "codes.log"
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_CHANNEL", "file")
    monkeypatch.setenv("KOPILKA_MEMBER_CODE_FILE", str(path))
    reset_settings_cache()
    yield path
    monkeypatch.undo()
    reset_settings_cache()


def sent(path: Any) -> list[list[str]]:
    """(kind, destination, code) of each message delivered, in order."""
    if not path.exists():
        return []
    return [ln.split("\t")[1:] for ln in path.read_text().splitlines()]


def test_member_page_lists_the_members_coupons(
    program: Database, client: TestClient, auth: Any
) -> None:
    member_id = member(program)
    admin = auth("admin")
    pool = client.post(
        "/api/v1/coupon-pools",
        json={"name": "Birthday gift", "reward": {"kind": "percent", "value": "10"}},
        headers=admin,
    ).json()
    r = client.post(
        f"/api/v1/coupon-pools/{pool['id']}/personal-codes",
        json={"member_ids": [member_id]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    code = r.json()["codes"][0]["code"]
    sign_in(client, make_user(program, "support"))
    page = client.get(f"/admin/members/{member_id}")
    table = page.text[page.text.index('data-testid="coupons"') :]
    assert f"<code>{code}</code>" in table and "Birthday gift" in table
    assert 'data-status="available"' in table and "percent 10" in table


def test_send_the_app_link_to_the_member_and_show_it(
    program: Database, client: TestClient, code_file: Any
) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "support"))
    page = client.get(f"/admin/members/{member_id}")
    r = client.post(
        f"/admin/members/{member_id}/app-link",
        data={"csrf": csrf_of(page.text), "via": "", "lang": "en"},
        follow_redirects=False,
    )
    # the page itself is the answer: the link never travels in a URL
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    url = re.search(r'data-testid="app-link-url">([^<]+)<', r.text).group(1)
    assert re.fullmatch(r"http://testserver/app/link#[A-Za-z0-9_-]{40,}", url)
    assert "App link sent." in r.text and "+7 *** *** 45 67" in r.text
    assert sent(code_file) == [["sms", "+79161234567", url]]
    # the link signs the phone in, once
    token = url.split("#", 1)[1]
    signed = client.post("/api/v1/app/sign-in/link", json={"token": token})
    assert signed.status_code in (200, 201), signed.text
    with program.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.target_id == member_id).order_by(AuditEntry.id)
        ).all()
    actions = [a.action for a in rows]
    assert "member_app.link" in actions and "member.app_link_sent" in actions
    entry = next(a for a in rows if a.action == "member.app_link_sent")
    assert entry.actor.startswith("user:")
    assert entry.details["via"] == "sms" and entry.details["to"] == "+7 *** *** 45 67"
    assert entry.details["delivered"] is True and url not in str(entry.details)


def test_resend_the_card_by_email(program: Database, client: TestClient, code_file: Any) -> None:
    with program.session() as s:
        m = create_member(
            s, MemberCreate(phone="+79161234500", email="Olga@Example.com", name="Ольга"), "RU"
        )
        s.commit()
        member_id, card = str(m.id), m.card_number
    sign_in(client, make_user(program, "manager"))
    page = client.get(f"/admin/members/{member_id}")
    r = client.post(
        f"/admin/members/{member_id}/card",
        data={"csrf": csrf_of(page.text), "via": "email", "lang": "ru"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/admin/members/{member_id}?done=card_sent",
    )
    assert sent(code_file) == [["email", "olga@example.com", card]]
    with program.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.card_sent")).one()
    assert entry.details == {"via": "email", "to": "o***@example.com", "delivered": True}


def test_contact_actions_need_a_contact_a_role_and_the_csrf_token(
    program: Database, client: TestClient, code_file: Any
) -> None:
    with program.session() as s:
        m = create_member(s, MemberCreate(email="x@example.com", name="X"), "RU")
        s.commit()
        member_id = str(m.id)
    sign_in(client, make_user(program, "support"))
    page = client.get(f"/admin/members/{member_id}")
    r = client.post(
        f"/admin/members/{member_id}/card", data={"csrf": csrf_of(page.text), "via": "sms"}
    )
    assert r.status_code == 422 and "via: the member has no such contact" in r.text
    r = client.post(f"/admin/members/{member_id}/app-link", data={"csrf": "forged"})
    assert r.status_code == 403
    assert sent(code_file) == []
    client.cookies.clear()
    sign_in(client, make_user(program, "analyst", "analyst@example.com"))
    page = client.get(f"/admin/members/{member_id}")
    assert 'data-testid="app-link-form"' not in page.text
    r = client.post(f"/admin/members/{member_id}/app-link", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403
    assert sent(code_file) == []
    with program.session() as s:
        assert not s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("member_app.link%"))
        ).all()


def test_a_failed_delivery_still_shows_the_link_and_is_audited(
    program: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kopilka.core.config import reset_settings_cache

    monkeypatch.setenv("KOPILKA_MEMBER_CODE_CHANNEL", "carrier-pigeon")
    reset_settings_cache()
    try:
        member_id = member(program)
        sign_in(client, make_user(program, "support"))
        page = client.get(f"/admin/members/{member_id}")
        r = client.post(f"/admin/members/{member_id}/app-link", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 200
        assert 'data-testid="contact-error"' in r.text and 'data-testid="app-link-url"' in r.text
        with program.session() as s:
            entry = s.scalars(
                select(AuditEntry).where(AuditEntry.action == "member.app_link_sent")
            ).one()
        assert entry.details["delivered"] is False and entry.details["error"] == "RuntimeError"
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def test_a_blocked_member_gets_no_app_link(
    program: Database, client: TestClient, code_file: Any
) -> None:
    member_id = member(program)
    sign_in(client, make_user(program, "admin"))
    page = client.get(f"/admin/members/{member_id}")
    client.post(
        f"/admin/members/{member_id}/status",
        data={"status": "blocked", "csrf": csrf_of(page.text)},
    )
    r = client.post(f"/admin/members/{member_id}/app-link", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 422 and 'data-testid="contact-error"' in r.text
    assert sent(code_file) == []


def test_session_cookie_is_secure_behind_a_tls_proxy(program: Database, client: TestClient) -> None:
    email = make_user(program)
    form = client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    assert "secure" in form.headers["set-cookie"].lower()  # the sign-in form's CSRF cookie
    # (an HTTP test client does not send a Secure cookie back: a browser over TLS would)
    pre = re.search(r"kopilka_console_pre=([^;]+)", form.headers["set-cookie"]).group(1)
    client.cookies.set("kopilka_console_pre", pre)
    r = client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(console.COOKIE))
    assert "; secure" in cookie.lower() and "httponly" in cookie.lower()
    # plain HTTP with no proxy saying otherwise: not Secure (a browser would drop it)
    client.cookies.clear()
    form = client.get("/admin/login")
    r = client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(console.COOKIE))
    assert "secure" not in cookie.lower()


def test_dashboards_show_tier_movement_and_campaigns(program: Database, client: TestClient) -> None:
    sign_in(client, make_user(program, "analyst"))
    for lang, words in (("en", "Tier movement"), ("ru", "Движение по уровням")):
        page = client.get("/admin/dashboards", headers={"Accept-Language": lang})
        assert page.status_code == 200 and words in page.text
        for testid in ("chart-tier-movement", "chart-campaign-cost", "chart-campaign-lift"):
            assert f'data-testid="{testid}"' in page.text
        for panel in ("tier_movement", "campaign_cost", "campaign_lift"):
            assert f'data-testid="csv-{panel}"' in page.text
    # a filter a report does not apply is named under its chart
    page = client.get("/admin/dashboards?store=msk-01&tier=gold")
    note = re.search(r'data-testid="ignored-tier_movement">([^<]+)<', page.text).group(1)
    assert note == "Filters this chart does not apply: store."
    note = re.search(r'data-testid="ignored-campaign_lift">([^<]+)<', page.text).group(1)
    assert note == "Filters this chart does not apply: tier."
    assert 'data-testid="ignored-card_share"' not in page.text  # receipts apply them all
    r = client.get("/admin/reports/tier_movement.csv?grain=month")
    assert r.status_code == 200 and r.text.startswith("period,changes,upgrades,downgrades")
    r = client.get("/admin/reports/campaigns.csv")
    assert r.status_code == 200 and r.text.startswith("campaign,name,purchases,members,")
