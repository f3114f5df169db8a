"""A member's rights: export everything, erase everything, keep the ledger whole."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from kopilka.cli import app as cli
from kopilka.core.db import Database
from kopilka.ledger.models import Posting
from kopilka.members import privacy
from tests.conftest import KeyFactory
from tests.purchases.conftest import receipt
from tests.security.rawdb import found_in, raw_dump, rows_as_text

pytestmark = pytest.mark.usefixtures("program")

PERSON = {
    "phone": "+79161234567",
    "email": "zinaida.kuznetsova@example.org",
    "name": "Зинаида Кузнецова",
    "birth_date": "1987-03-14",
    "external_id": "CRM-ZK-1987",
    "consents": {"sms": True, "email": True},
    "consent_source": "pos",
    "consent_text_version": "2026-01",
}


def _with_history(client: TestClient, admin: dict[str, str], till: dict[str, str]) -> Any:
    m = client.post("/api/v1/members", json=PERSON, headers=admin).json()
    r = client.post(
        f"/api/v1/members/{m['id']}/adjustments",
        json={"currency": "BONUS", "amount": "500.00", "reason": "welcome"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    body = receipt("R-1", m["card_number"], redeem={"currency": "BONUS", "amount": "100"})
    r = client.post("/api/v1/purchases", json=body, headers=till)
    assert r.status_code == 201, r.text
    return m


def _totals(db: Database) -> dict[str, Any]:
    with db.session() as s:
        rows = s.execute(
            select(Posting.account_id, func.sum(Posting.amount)).group_by(Posting.account_id)
        ).all()
    return dict(rows)


def test_export_holds_everything_about_the_member(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given a member with consents, an adjustment and a purchase
    admin, till = auth("admin"), auth("cashier")
    m = _with_history(client, admin, till)
    # when support exports their data
    r = client.get(f"/api/v1/members/{m['id']}/export", headers=admin)
    # then one JSON document holds profile, consents, balances, ledger, purchases, audit
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="member-{m["id"]}.json"'
    doc = r.json()
    assert doc["format"] == "kopilka.member-export/1"
    assert {k: doc["member"][k] for k in ("phone", "email", "name", "birth_date")} == {
        k: PERSON[k] for k in ("phone", "email", "name", "birth_date")
    }
    assert [
        (c["channel"], c["granted"], c["source"], c["text_version"]) for c in doc["consents"]
    ] == [
        ("email", True, "pos", "2026-01"),
        ("sms", True, "pos", "2026-01"),
    ]
    assert [e["kind"] for e in doc["ledger"]] == ["earn", "redeem", "adjust"]
    balances = client.get(f"/api/v1/members/{m['id']}/balances", headers=admin).json()
    assert doc["balances"] == balances["balances"]
    assert doc["balances"][0]["available"] == "426.48"  # 500 − 100 + 5 % of 529.80 paid
    assert [p["external_id"] for p in doc["purchases"]] == ["R-1"]
    assert [a["action"] for a in doc["audit"]] == ["ledger.adjust"]
    assert set(doc["other"]) == set(privacy._exporters)  # what other parts add
    # and the export itself is in the audit log
    audit = client.get(
        f"/api/v1/audit?action=member.export&target_id={m['id']}", headers=admin
    ).json()
    assert [a["actor"] for a in audit["items"]] == [doc["audit"][0]["actor"]]


def test_an_export_without_the_ledger_or_purchases_wired_refuses(
    client: TestClient, admin: dict[str, str], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a member, and the ledger's or the purchases' section not wired
    m = client.post("/api/v1/members", json={"phone": "+79160000002"}, headers=admin).json()
    for registry in ("_ledger", "_purchases"):
        with monkeypatch.context() as patch, db.session() as session:
            patch.setattr(privacy, registry, [])
            # when exported, then it refuses rather than answer an incomplete document
            with pytest.raises(RuntimeError, match="wire"):
                privacy.export_member(session, uuid.UUID(m["id"]), "test")


def test_exporters_and_erasers_of_other_parts_join(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given another part of Kopilka that holds data about members
    held: dict[str, str] = {}
    privacy.register_exporter("devices", lambda s, mid: {"count": len(held)})
    privacy.register_eraser("devices", lambda s, mid: held.pop(str(mid), None) and None)
    try:
        m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
        held[m["id"]] = "a device"
        # when the member is exported and erased, then its section and eraser take part
        doc = client.get(f"/api/v1/members/{m['id']}/export", headers=admin).json()
        assert doc["other"]["devices"] == {"count": 1}
        assert client.post(f"/api/v1/members/{m['id']}/erase", headers=admin).status_code == 200
        assert held == {}
    finally:
        privacy._exporters.pop("devices")
        privacy._erasers.pop("devices")


def _report_figures(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    """Every dashboard's figures, after a full rollup. ``tiers`` is left out: it is a
    snapshot of the members there are now, and an erased person is no longer one."""
    from kopilka.reports.jobs import run_rollup

    run_rollup(full=True, settle_seconds=0)
    out: dict[str, Any] = {}
    names = client.get("/api/v1/reports", headers=admin).json()["reports"]
    assert len(names) >= 10
    for name in names:
        if name == "tiers":
            continue
        r = client.get(f"/api/v1/reports/{name}", headers=admin)
        assert r.status_code == 200, (name, r.text)
        out[name] = {k: v for k, v in r.json().items() if k not in ("rolled_up_at", "as_of")}
        # the rollup's reports carry their moment in the summary; those served by their own
        # domain (referrals, challenges) have a shape of their own
        if isinstance(out[name].get("summary"), dict):
            out[name]["summary"].pop("as_of", None)
    return out


def test_erasure_leaves_an_anonymous_account_and_a_whole_ledger(
    client: TestClient, auth: KeyFactory, db: Database
) -> None:
    # given a member with history, and the ledger's totals per account
    admin, till = auth("admin"), auth("cashier")
    m = _with_history(client, admin, till)
    before_totals = _totals(db)
    balances = client.get(f"/api/v1/members/{m['id']}/balances", headers=admin).json()
    reports_before = _report_figures(client, admin)
    # when an admin erases the member
    r = client.post(
        f"/api/v1/members/{m['id']}/erase", json={"reason": "ticket 4711"}, headers=admin
    )
    # then the account stays, anonymous, with a card no plastic card leads to
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["status"] == "erased"
    assert [erased[k] for k in ("phone", "email", "name", "birth_date", "external_id")] == [
        None
    ] * 5
    assert erased["card_number"] != m["card_number"] and len(erased["card_number"]) == 13
    assert erased["consents"] == {"email": False, "sms": False, "push": False}
    # and the ledger is untouched: same postings, same balances, every invariant holds
    assert _totals(db) == before_totals
    after = client.get(f"/api/v1/members/{m['id']}/balances", headers=admin).json()
    assert after == balances
    result = CliRunner().invoke(cli, ["ledger", "verify", "--all"])
    assert result.exit_code == 0, result.output
    # and the reports' figures are the same, rolled up again from scratch
    assert _report_figures(client, admin) == reports_before
    # and no personal datum of the member is left anywhere in the database
    dump = raw_dump(db)
    left = found_in(
        dump,
        [
            PERSON["phone"],
            PERSON["email"],
            PERSON["name"],
            "79161234567",
            "Кузнецова",
            PERSON["birth_date"],
            "14.03.1987",
        ],
    )
    assert left == []
    # nor in any row the identifiers that the member.created event carried (regression:
    # the outbox kept the old card number and the CRM id after erasure). Freed pages are
    # zeroed by SQLite's secure_delete; old page images in its WAL and PostgreSQL's dead
    # row versions go at the next checkpoint / VACUUM (docs/security.md).
    rows = "\n".join(rows_as_text(db))
    assert found_in(rows, [m["card_number"], PERSON["external_id"]]) == []
    # nor can they be found by them any more
    for q in (f"phone={PERSON['phone']}", f"email={PERSON['email']}", f"card={m['card_number']}"):
        assert client.get(f"/api/v1/members?{q}", headers=admin).json()["items"] == []
    # and the old card cannot be used at a till
    r = client.post("/api/v1/purchases", json=receipt("R-2", m["card_number"]), headers=till)
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    # and the erasure is audited with the fields it removed, never their values
    audit = client.get(f"/api/v1/audit?action=member.erase&target_id={m['id']}", headers=admin)
    entry = audit.json()["items"][0]
    assert entry["before"] == {
        "status": "active",
        "fields": ["card_number", "phone", "email", "name", "birth_date", "external_id"],
    }
    assert entry["after"] == {"status": "erased"} and entry["details"] == {"reason": "ticket 4711"}


def test_erasing_twice_changes_nothing_and_erased_data_cannot_come_back(
    client: TestClient, admin: dict[str, str]
) -> None:
    m = client.post("/api/v1/members", json=PERSON, headers=admin).json()
    first = client.post(f"/api/v1/members/{m['id']}/erase", headers=admin).json()
    second = client.post(f"/api/v1/members/{m['id']}/erase", headers=admin).json()
    assert first == second
    r = client.patch(f"/api/v1/members/{m['id']}", json={"name": "X"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "member_erased"
    # while the same person may enrol again as a new member
    again = client.post("/api/v1/members", json=PERSON, headers=admin)
    assert again.status_code == 201 and again.json()["id"] != m["id"]


def test_only_admins_erase(client: TestClient, auth: KeyFactory) -> None:
    m = client.post("/api/v1/members", json=PERSON, headers=auth("admin")).json()
    for role in ("manager", "analyst", "cashier", "partner"):
        r = client.post(f"/api/v1/members/{m['id']}/erase", headers=auth(role))
        assert r.status_code == 403, role
    assert client.get(f"/api/v1/members/{m['id']}", headers=auth("admin")).json()["name"]
