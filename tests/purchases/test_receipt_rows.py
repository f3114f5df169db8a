"""The exact rows a receipt writes, on both databases.

Each test confirms receipts the way a till does (``POST /api/v1/purchases`` with a
cashier's key) on a pinned clock, then reads back every row the operation may have
written (``_rows``) and compares it with a list derived by hand. Generated ids and the
moments of writing are replaced by what they stand for (a purchase by its receipt number,
a ledger entry by its key, a lot by the entry that made it, an account by its kind and
currency, a moment of writing by ``NOW``), so the comparison does not depend on the
database, the run, or which module reads which clock.

This is the safety net for the restructure of the confirmation: any change in what a
receipt writes shows up as a difference in one of these lists.
"""

from __future__ import annotations

import datetime as dt
import json
import pprint
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import or_, select

from kopilka.core.db import Database
from kopilka.coupons.models import Coupon, CouponUse
from kopilka.events.models import OutboxEvent
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Account, Entry, Lot, Posting
from kopilka.ledger.verify import verify
from kopilka.members.models import Member
from kopilka.program import service as program_service
from kopilka.purchases.models import (
    LineEarning,
    Purchase,
    PurchaseLine,
    PurchaseReturn,
    ReturnLine,
)
from kopilka.rules.models import CampaignSpend, PurchaseRule, RuleUsage
from kopilka.tiers.models import MemberTier, TierChange
from kopilka.webhooks.models import Delivery
from tests.conftest import Clock, KeyFactory

UTC = dt.UTC
NOW = "now"  # a moment of writing: the pinned clock or the wall clock, whichever wrote it

# A programme small enough to figure by hand: 10 % of what is paid, pending a week,
# expiring 30 local days after; bakery lines earn 5 % more from a campaign with a budget
# of 100; cafe lines earn 1 per cup, at most 3 a week per member.
PROGRAM = """
name: Rows
base_currency: RUB
timezone: Europe/Moscow
default_phone_region: RU
hold_minutes: 15
currencies:
  - code: BONUS
    name: Bonus
    precision: 2
    value: "1.00"
    pending_days: 7
    expires_after_days: 30
    redeem_max_share: "0.5"
stores:
  - {code: msk-01, name: "Тверская, 12"}
clock: {max_replay_days: 3650}
campaigns:
  - code: bread-week
    name: Bread week
    budget: {currency: BONUS, amount: "100"}
rules:
  - name: Base earn
    key: base
    earn: {currency: BONUS, percent: "10"}
  - name: Bread +5 %
    key: bread-bonus
    campaign: bread-week
    when: {lines: {categories: [bakery]}}
    earn: {currency: BONUS, percent: "5"}
  - name: A point a cup
    key: cup-points
    when: {lines: {categories: [cafe]}}
    earn: {currency: BONUS, amount: "1", per: unit}
    caps: {per_member: {amount: "3", period: week}}
"""

# The same with tiers on money spent: 500 a year makes a member gold.
TIERS = """
tiers:
  metric: spend
  window: {rolling_days: 365}
  grace_days: 30
  levels:
    - {code: basic, name: Basic, threshold: "0"}
    - {code: gold, name: Gold, threshold: "500"}
"""


@pytest.fixture
def rows_program(db: Database) -> Database:
    _apply(db, PROGRAM)
    return db


def _apply(db: Database, text: str) -> None:
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


@pytest.fixture
def till(auth: KeyFactory) -> dict[str, str]:
    return auth("cashier", store="msk-01")


def _enrol(client: TestClient, admin: dict[str, str], n: int = 0) -> dict[str, Any]:
    r = client.post("/api/v1/members", json={"phone": f"+7916444{n:04d}"}, headers=admin)
    assert r.status_code == 201, r.text
    member: dict[str, Any] = r.json()
    return member


def _line(sku: str, price: str, quantity: str = "1", category: str = "dairy") -> dict[str, Any]:
    return {"sku": sku, "category": category, "quantity": quantity, "unit_price": price}


def _receipt(
    external_id: str,
    member: dict[str, Any] | None,
    lines: list[dict[str, Any]],
    occurred_at: str = "2026-12-05T14:00:00+03:00",  # 11:00 UTC, an hour before PINNED
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": occurred_at,
        "lines": lines,
        **extra,
    }
    if member is not None:
        body["member"] = {"card": member["card_number"]}
    return body


def _post(client: TestClient, till: dict[str, str], body: dict[str, Any], status: int = 201) -> Any:
    r = client.post("/api/v1/purchases", json=body, headers=till)
    assert r.status_code == status, r.text
    return r.json()


def _seed(
    db: Database,
    member: dict[str, Any],
    key: str,
    amount: str,
    *,
    available_at: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=UTC),
    expires_at: dt.datetime | None = None,
) -> None:
    """A lot of ``amount`` BONUS given to the member by hand (key ``key``)."""
    with db.session() as s:
        ledger.credit(
            s,
            key=key,
            kind="adjust",
            member_id=uuid.UUID(member["id"]),
            currency="BONUS",
            amount=D(amount),
            actor="test",
            available_at=available_at,
            expires_at=expires_at,
            never_expires=expires_at is None,
        )
        s.commit()


def _named(data: Any, names: dict[Any, str]) -> Any:
    """An event's data with a coupon's id named, and moments of writing as ``NOW``."""
    if isinstance(data, dict):
        return {
            k: NOW
            if k == "created_at"
            else names.get(("coupon", v), v)
            if k == "coupon_id"
            else _named(v, names)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_named(v, names) for v in data]
    return data


def _rows(db: Database, clock: Clock, member: dict[str, Any] | None, *receipts: str) -> Any:
    """Every row the receipts ``receipts`` (of store msk-01) and the member's operations
    wrote, by table, with ids and moments of writing replaced by what they stand for:
    a purchase is its external id, the member ``M``, an entry its key (ids in it
    replaced too), a lot ``lot:<entry>``, an account ``(kind, currency, member)``."""
    mid = uuid.UUID(member["id"]) if member is not None else None
    wall = dt.datetime.now(UTC)

    def at(v: dt.datetime | None) -> Any:
        # a moment of writing: the pinned clock's, or the wall clock's of this run
        if v is not None and (v == clock.at or abs(v - wall) < dt.timedelta(hours=1)):
            return NOW
        return v

    with db.session() as s:
        names: dict[Any, str] = {}
        if mid is not None:
            names[mid] = "M"
        purchases = (
            s.execute(
                select(Purchase)
                .where(Purchase.store == "msk-01", Purchase.external_id.in_(receipts))
                .order_by(Purchase.external_id)
            )
            .scalars()
            .all()
        )
        pids = [p.id for p in purchases]
        for p in purchases:
            names[p.id] = p.external_id
        returns = (
            s.execute(
                select(PurchaseReturn)
                .where(PurchaseReturn.purchase_id.in_(pids))
                .order_by(PurchaseReturn.external_id)
            )
            .scalars()
            .all()
        )
        for r in returns:
            names[r.id] = r.external_id

        def name(v: Any) -> Any:
            return names.get(v, v)

        def key(k: str) -> str:
            for i, n in names.items():
                k = k.replace(str(i), n)
            return k

        entries = (
            s.execute(
                select(Entry)
                .where(
                    or_(Entry.purchase_id.in_(pids), Entry.member_id == mid)
                    if mid is not None
                    else Entry.purchase_id.in_(pids)
                )
                .order_by(Entry.key)
            )
            .scalars()
            .all()
        )
        for e in entries:
            names[e.id] = key(e.key)
        accounts = {
            a.id: a
            for a in s.execute(
                select(Account).where(or_(Account.member_id.is_(None), Account.member_id == mid))
            ).scalars()
        }

        def account(i: int) -> tuple[str, str, str | None]:
            a = accounts[i]
            return (a.kind, a.currency, name(a.member_id))

        lots = (
            s.execute(select(Lot).where(Lot.entry_id.in_([e.id for e in entries])).order_by(Lot.id))
            .scalars()
            .all()
        )
        for lot in lots:
            names[("lot", lot.id)] = f"lot:{names[lot.entry_id]}"
        postings = s.execute(
            select(Posting).where(Posting.entry_id.in_([e.id for e in entries]))
        ).scalars()
        events = (
            s.execute(
                select(OutboxEvent)
                .where(
                    or_(
                        OutboxEvent.member_id == mid,
                        OutboxEvent.id.in_(
                            [
                                ev.id
                                for ev in s.execute(select(OutboxEvent)).scalars()
                                if ev.data.get("purchase_id") in {str(p) for p in pids}
                            ]
                        ),
                    )
                )
                .order_by(OutboxEvent.created_at, OutboxEvent.id)
            )
            .scalars()
            .all()
        )
        for c in s.execute(select(Coupon)).scalars():
            names[("coupon", c.id)] = f"coupon:{c.code}"
            names[c.pool_id] = "pool"
        # and whatever the receipts wrote, the ledger still adds up
        assert verify(s, stop_at_first=False) == []
        # the member's enrolment is not a receipt's (and carries a random card number)
        events = [ev for ev in events if ev.type != "member.created"]
        for ev in events:
            names[ev.id] = f"event:{ev.type}"
        out = {
            "purchases": [
                (
                    p.external_id,
                    name(p.member_id),
                    p.status,
                    p.subtotal,
                    p.discount,
                    p.total_due,
                    p.redeem_currency,
                    p.redeemed,
                    p.redeemed_value,
                    p.figures["earned"],
                    p.figures["redeemed"],
                    [(c["code"], c["status"]) for c in p.figures["coupons"]],
                    p.hold_expires_at - p.created_at if p.hold_expires_at else None,
                    p.receipt_number,
                    at(p.created_at),
                    at(p.settled_at),
                    at(p.cancelled_at),
                )
                for p in purchases
            ],
            "lines": sorted(
                (
                    name(ln.purchase_id),
                    ln.line_no,
                    ln.sku,
                    ln.quantity,
                    ln.amount,
                    ln.discount,
                    ln.redeemed,
                    ln.redeemed_value,
                    ln.total_due,
                )
                for ln in s.execute(
                    select(PurchaseLine).where(PurchaseLine.purchase_id.in_(pids))
                ).scalars()
            ),
            "earnings": sorted(
                (name(e.purchase_id), e.line_no, e.currency, e.amount)
                for e in s.execute(
                    select(LineEarning).where(LineEarning.purchase_id.in_(pids))
                ).scalars()
            ),
            "rules": sorted(
                (
                    name(r.purchase_id),
                    r.rule_key,
                    r.unit,
                    r.effect,
                    r.campaign,
                    name(r.member_id),
                    r.period_start,
                    r.amount,
                    r.released,
                )
                for r in s.execute(
                    select(PurchaseRule).where(PurchaseRule.purchase_id.in_(pids))
                ).scalars()
            ),
            "entries": [
                (
                    names[e.id],
                    e.kind,
                    e.currency,
                    e.amount,
                    name(e.member_id),
                    name(e.purchase_id),
                    names.get(e.reverses_id) if e.reverses_id else None,
                    e.occurred_at if e.occurred_at != clock.at else NOW,
                )
                for e in entries
            ],
            "postings": [
                (
                    names[p.entry_id],
                    *account(p.account_id),
                    p.amount,
                    names.get(("lot", p.lot_id)) if p.lot_id is not None else None,
                )
                for p in postings
            ],
            "lots": sorted(
                (
                    names[("lot", lot.id)],
                    lot.amount,
                    lot.remaining,
                    lot.available_at,
                    lot.expires_at,
                )
                for lot in lots
            ),
            "accounts": sorted(
                (a.kind, a.currency, name(a.member_id), a.balance, a.debt)
                for a in accounts.values()
            ),
            "usage": [
                (u.rule_key, name(u.member_id), u.period_start, u.unit, u.amount)
                for u in s.execute(
                    select(RuleUsage).where(RuleUsage.member_id == mid).order_by(RuleUsage.rule_key)
                ).scalars()
            ],
            "budgets": [
                (c.code, c.currency, c.spent)
                for c in s.execute(select(CampaignSpend).order_by(CampaignSpend.code)).scalars()
            ],
            "tier": (
                s.scalar(select(Member.tier).where(Member.id == mid)) if mid is not None else None
            ),
            "member_tiers": [
                (t.floor_tier, t.floor_until, t.grace_until, at(t.evaluated_at))
                for t in s.execute(select(MemberTier).where(MemberTier.member_id == mid)).scalars()
            ],
            "tier_changes": [
                (c.from_tier, c.to_tier, c.reason, at(c.at), c.actor, c.qualifying_value, c.note)
                for c in s.execute(
                    select(TierChange)
                    .where(TierChange.member_id == mid)
                    .order_by(TierChange.at, TierChange.created_at)
                ).scalars()
            ],
            "events": [
                (ev.type, name(ev.member_id), _named(json.loads(key(json.dumps(ev.data))), names))
                for ev in events
            ],
            "returns": [
                (r.external_id, name(r.purchase_id), r.refund_due, at(r.created_at))
                for r in returns
            ],
            "return_lines": sorted(
                (name(r.return_id), r.line_no, r.quantity, r.refund, r.points_restored)
                for r in s.execute(
                    select(ReturnLine).where(ReturnLine.purchase_id.in_(pids))
                ).scalars()
            ),
            "coupons": [
                (code, uses)
                for code, uses in s.execute(select(Coupon.code, Coupon.uses).order_by(Coupon.code))
            ],
            "coupon_uses": sorted(
                (code, name(u.purchase_id), name(u.member_id), u.discount, at(u.released_at))
                for u, code in s.execute(
                    select(CouponUse, Coupon.code)
                    .join(Coupon, Coupon.id == CouponUse.coupon_id)
                    .where(CouponUse.purchase_id.in_(pids))
                )
            ),
            "deliveries": sorted(
                (names.get(d.event_id, d.event_id), name(d.member_id), d.status)
                for d in s.execute(
                    select(Delivery).where(Delivery.event_id.in_([ev.id for ev in events]))
                ).scalars()
            ),
        }
    return out


EMPTY: dict[str, Any] = {
    "purchases": [],
    "lines": [],
    "earnings": [],
    "rules": [],
    "entries": [],
    "postings": [],
    "lots": [],
    "accounts": [],
    "usage": [],
    "budgets": [],
    "tier": None,
    "member_tiers": [],
    "tier_changes": [],
    "events": [],
    "returns": [],
    "return_lines": [],
    "coupons": [],
    "coupon_uses": [],
    "deliveries": [],
}


def _same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Table by table, so that a failure names every table that differs."""
    expected = {**EMPTY, **expected}
    assert set(actual) == set(expected)
    for both in (actual, expected):  # postings in no order that matters
        both["postings"] = sorted(both["postings"], key=_posting_order)
    differ = {
        k: {"actual": actual[k], "expected": expected[k]}
        for k in expected
        if actual[k] != expected[k]
    }
    assert not differ, pprint.pformat(differ, width=100)


def _posting_order(row: tuple[Any, ...]) -> str:
    return repr(tuple(v.normalize() if isinstance(v, D) else v for v in row))


def utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


# A receipt of 2026-12-05 14:00 Moscow (11:00 UTC): its points are pending 7 days, open
# from 2026-12-12 11:00 UTC, and expire at the start of the 31st local day after that
# (2027-01-12 00:00 Moscow = 2027-01-11 21:00 UTC).
OCCURRED = utc(2026, 12, 5, 11)
AVAILABLE = utc(2026, 12, 12, 11)
EXPIRES = utc(2027, 1, 11, 21)
EARNED_AT = "2026-12-12T14:00:00+03:00"
# The receipt's moment in the events of a later operation (commit, cancel, return), read
# back from the database: in UTC, where the confirmation's events carry the till's offset.
STORED = "2026-12-05T11:00:00+00:00"


def _earned(amount: str, available_at: str = EARNED_AT) -> list[dict[str, str]]:
    return [{"currency": "BONUS", "amount": amount, "available_at": available_at}]


def _purchase_event(
    type_: str, receipt: str, subtotal: str, total: str, earned: Any, redeemed: Any = (),
    discount: str = "0.00", member: str | None = "M",
    occurred_at: str = "2026-12-05T14:00:00+03:00", **extra: Any,
) -> tuple[str, str | None, dict[str, Any]]:  # fmt: skip
    return (
        type_,
        member,
        {
            "purchase_id": receipt,
            "store": "msk-01",
            "external_id": receipt,
            "channel": "pos",
            "member_id": member,
            "occurred_at": occurred_at,
            "subtotal": subtotal,
            "discount": discount,
            "total_due": total,
            "redeemed": list(redeemed),
            "earned": earned,
            **extra,
        },
    )


def _points_earned(receipt: str, amount: str, available_at: str = EARNED_AT) -> Any:
    return (
        "points.earned",
        "M",
        {"member_id": "M", "purchase_id": receipt, "currency": "BONUS", "amount": amount,
         "available_at": available_at},
    )  # fmt: skip


def test_an_ordinary_receipt_earns_a_pending_lot(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member, and a webhook endpoint subscribed to confirmed receipts
    m = _enrol(client, admin)
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/hook", "events": ["purchase.confirmed"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # when the till confirms 2 × 50.00 of milk and 30.00 of bread
    _post(client, till, _receipt("R1", m, [_line("MILK", "50.00", "2"), _line("BREAD", "30.00")]))
    # then 10 % of each line is earned (10.00 + 3.00) as one lot, pending a week, and the
    # webhook has one delivery pending
    _same(
        _rows(rows_program, clock, m, "R1"),
        {
            "purchases": [
                (
                    "R1",
                    "M",
                    "confirmed",
                    D(130),
                    D(0),
                    D(130),
                    None,
                    D(0),
                    D(0),
                    _earned("13.00"),
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [
                ("R1", 1, "MILK", D(2), D(100), D(0), D(0), D(0), D(100)),
                ("R1", 2, "BREAD", D(1), D(30), D(0), D(0), D(0), D(30)),
            ],
            "earnings": [("R1", 1, "BONUS", D(10)), ("R1", 2, "BONUS", D(3))],
            "rules": [("R1", "base", "BONUS", "earn", None, "M", None, D(13), False)],
            "entries": [
                ("purchase:R1:earn:BONUS", "earn", "BONUS", D(13), "M", "R1", None, OCCURRED)
            ],
            "postings": [
                ("purchase:R1:earn:BONUS", "issuance", "BONUS", None, D(-13), None),
                (
                    "purchase:R1:earn:BONUS",
                    "member",
                    "BONUS",
                    "M",
                    D(13),
                    "lot:purchase:R1:earn:BONUS",
                ),
            ],
            "lots": [("lot:purchase:R1:earn:BONUS", D(13), D(13), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(13), D(0)),
            ],
            "events": [
                _purchase_event("purchase.confirmed", "R1", "130.00", "130.00", _earned("13.00")),
                _points_earned("R1", "13.00"),
            ],
            "deliveries": [("event:purchase.confirmed", "M", "pending")],
        },
    )


def test_a_redemption_spends_the_lot_that_expires_first(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member with lots made in an order that is not their expiry's: 30.00 made
    # first expiring 1 February, 20.00 made second expiring 1 January, 40.00 made third
    # expiring 1 March, and 50.00 made last that expires soonest (20 December) but is not
    # available until 10 December
    m = _enrol(client, admin)
    _seed(rows_program, m, "middle", "30.00", expires_at=utc(2027, 2, 1))
    _seed(rows_program, m, "soon", "20.00", expires_at=utc(2027, 1, 1))
    _seed(rows_program, m, "last", "40.00", expires_at=utc(2027, 3, 1))
    _seed(rows_program, m, "pending", "50.00", available_at=utc(2026, 12, 10),
          expires_at=utc(2026, 12, 20))  # fmt: skip
    # when the member pays 35.00 of a 100.00 receipt with points
    _post(
        client,
        till,
        _receipt(
            "R2", m, [_line("MILK", "100.00")], redeem={"currency": "BONUS", "amount": "35.00"}
        ),
    )
    # then the open lot that expires first is spent whole (20.00), the rest (15.00) comes
    # from the next to expire; the last to expire and the pending lot are untouched; 10 %
    # of the 65.00 paid is earned.
    # (Checked to fail, on both databases, when lots are spent another way: with
    # ``ledger.planner.fifo_order`` changed locally to sort by expiry reversed, by id
    # descending (newest first) and by id ascending (oldest first), this test failed on
    # postings and lots each time; the changes were not kept.)
    _same(
        _rows(rows_program, clock, m, "R2"),
        {
            "purchases": [
                ("R2", "M", "confirmed", D(100), D(0), D(65), "BONUS", D(35), D(35),
                 _earned("6.50"), _redeemed("35.00"), [], None, None, NOW, NOW, None),
            ],
            "lines": [("R2", 1, "MILK", D(1), D(100), D(0), D(35), D(35), D(65))],
            "earnings": [("R2", 1, "BONUS", D("6.50"))],
            "rules": [("R2", "base", "BONUS", "earn", None, "M", None, D("6.50"), False)],
            "entries": [
                ("last", "adjust", "BONUS", D(40), "M", None, None, NOW),
                ("middle", "adjust", "BONUS", D(30), "M", None, None, NOW),
                ("pending", "adjust", "BONUS", D(50), "M", None, None, NOW),
                ("purchase:R2:earn:BONUS", "earn", "BONUS", D("6.50"), "M", "R2", None,
                 OCCURRED),
                ("purchase:R2:redeem", "redeem", "BONUS", D(35), "M", "R2", None, OCCURRED),
                ("soon", "adjust", "BONUS", D(20), "M", None, None, NOW),
            ],
            "postings": [
                ("last", "issuance", "BONUS", None, D(-40), None),
                ("last", "member", "BONUS", "M", D(40), "lot:last"),
                ("middle", "issuance", "BONUS", None, D(-30), None),
                ("middle", "member", "BONUS", "M", D(30), "lot:middle"),
                ("pending", "issuance", "BONUS", None, D(-50), None),
                ("pending", "member", "BONUS", "M", D(50), "lot:pending"),
                ("soon", "issuance", "BONUS", None, D(-20), None),
                ("soon", "member", "BONUS", "M", D(20), "lot:soon"),
                ("purchase:R2:earn:BONUS", "issuance", "BONUS", None, D("-6.50"), None),
                ("purchase:R2:earn:BONUS", "member", "BONUS", "M", D("6.50"),
                 "lot:purchase:R2:earn:BONUS"),
                ("purchase:R2:redeem", "member", "BONUS", "M", D(-20), "lot:soon"),
                ("purchase:R2:redeem", "member", "BONUS", "M", D(-15), "lot:middle"),
                ("purchase:R2:redeem", "redemption", "BONUS", None, D(35), None),
            ],
            "lots": [
                ("lot:last", D(40), D(40), utc(2026, 1, 1), utc(2027, 3, 1)),
                ("lot:middle", D(30), D(15), utc(2026, 1, 1), utc(2027, 2, 1)),
                ("lot:pending", D(50), D(50), utc(2026, 12, 10), utc(2026, 12, 20)),
                ("lot:purchase:R2:earn:BONUS", D("6.50"), D("6.50"), AVAILABLE, EXPIRES),
                ("lot:soon", D(20), D(0), utc(2026, 1, 1), utc(2027, 1, 1)),
            ],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D("111.50"), D(0)),
                ("redemption", "BONUS", None, D(0), D(0)),
            ],
            "events": [
                _purchase_event("purchase.confirmed", "R2", "100.00", "65.00", _earned("6.50"),
                                _redeemed("35.00")),
                _points_earned("R2", "6.50"),
                _points_redeemed("R2", "35.00"),
            ],
        },
    )  # fmt: skip


def _redeemed(amount: str) -> list[dict[str, str]]:
    return [{"currency": "BONUS", "amount": amount, "value": amount}]


def _points_redeemed(receipt: str, amount: str) -> Any:
    return (
        "points.redeemed",
        "M",
        {"member_id": "M", "purchase_id": receipt, **_redeemed(amount)[0]},
    )


def test_a_debt_is_repaid_first_from_the_lot_a_receipt_earns(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member who was given 40.00, spent them, had the gift reversed (a debt of
    # 40.00), then was given 25.00 that repaid part of it: 15.00 owed, no lot open
    m = _enrol(client, admin)
    mid = uuid.UUID(m["id"])
    _seed(rows_program, m, "gift", "40.00")
    with rows_program.session() as s:
        ledger.debit(s, key="spend", kind="adjust", member_id=mid, currency="BONUS",
                     amount=D("40.00"), actor="test")  # fmt: skip
        gift = s.execute(select(Entry.id).where(Entry.key == "gift")).scalar_one()
        ledger.reverse(s, gift, key="undo", actor="test")
        s.commit()
    _seed(rows_program, m, "again", "25.00")
    # when the member buys 200.00 on 20 November (the lot of 20.00 it earns is open from
    # 27 November 07:00 UTC, before the pinned clock)
    _post(
        client,
        till,
        _receipt("R3", m, [_line("CHEESE", "200.00")], occurred_at="2026-11-20T10:00:00+03:00"),
    )
    # then 15.00 of the new lot repays the debt at once (a posting without a lot): the
    # debt is 0 and 5.00 of the lot is left; it expires at the start of 28 December Moscow
    earned = _earned("20.00", "2026-11-27T10:00:00+03:00")
    lot = "lot:purchase:R3:earn:BONUS"
    _same(
        _rows(rows_program, clock, m, "R3"),
        {
            "purchases": [
                (
                    "R3",
                    "M",
                    "confirmed",
                    D(200),
                    D(0),
                    D(200),
                    None,
                    D(0),
                    D(0),
                    earned,
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [("R3", 1, "CHEESE", D(1), D(200), D(0), D(0), D(0), D(200))],
            "earnings": [("R3", 1, "BONUS", D(20))],
            "rules": [("R3", "base", "BONUS", "earn", None, "M", None, D(20), False)],
            "entries": [
                ("again", "adjust", "BONUS", D(25), "M", None, None, NOW),
                ("gift", "adjust", "BONUS", D(40), "M", None, None, NOW),
                (
                    "purchase:R3:earn:BONUS",
                    "earn",
                    "BONUS",
                    D(20),
                    "M",
                    "R3",
                    None,
                    utc(2026, 11, 20, 7),
                ),
                ("spend", "adjust", "BONUS", D(40), "M", None, None, NOW),
                ("undo", "reversal", "BONUS", D(40), "M", None, "gift", NOW),
            ],
            "postings": [
                ("again", "issuance", "BONUS", None, D(-25), None),
                ("again", "member", "BONUS", "M", D(-25), "lot:again"),
                ("again", "member", "BONUS", "M", D(25), None),
                ("again", "member", "BONUS", "M", D(25), "lot:again"),
                ("gift", "issuance", "BONUS", None, D(-40), None),
                ("gift", "member", "BONUS", "M", D(40), "lot:gift"),
                ("purchase:R3:earn:BONUS", "issuance", "BONUS", None, D(-20), None),
                ("purchase:R3:earn:BONUS", "member", "BONUS", "M", D(-15), lot),
                ("purchase:R3:earn:BONUS", "member", "BONUS", "M", D(15), None),
                ("purchase:R3:earn:BONUS", "member", "BONUS", "M", D(20), lot),
                ("spend", "member", "BONUS", "M", D(-40), "lot:gift"),
                ("spend", "redemption", "BONUS", None, D(40), None),
                ("undo", "issuance", "BONUS", None, D(40), None),
                ("undo", "member", "BONUS", "M", D(-40), None),
            ],
            "lots": [
                ("lot:again", D(25), D(0), utc(2026, 1, 1), None),
                ("lot:gift", D(40), D(0), utc(2026, 1, 1), None),
                (lot, D(20), D(5), utc(2026, 11, 27, 7), utc(2026, 12, 27, 21)),
            ],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(5), D(0)),
                ("redemption", "BONUS", None, D(0), D(0)),
            ],
            "events": [
                _purchase_event(
                    "purchase.confirmed",
                    "R3",
                    "200.00",
                    "200.00",
                    earned,
                    occurred_at="2026-11-20T10:00:00+03:00",
                ),
                _points_earned("R3", "20.00", "2026-11-27T10:00:00+03:00"),
            ],
        },
    )


def test_a_receipt_without_a_member(
    rows_program: Database, client: TestClient, till: dict[str, str], clock: Clock
) -> None:
    # when the till confirms a receipt with no member
    _post(client, till, _receipt("R4", None, [_line("MILK", "100.00")]))
    # then the receipt and its line are written, nothing is earned, the ledger is untouched
    _same(
        _rows(rows_program, clock, None, "R4"),
        {
            "purchases": [
                (
                    "R4",
                    None,
                    "confirmed",
                    D(100),
                    D(0),
                    D(100),
                    None,
                    D(0),
                    D(0),
                    [],
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [("R4", 1, "MILK", D(1), D(100), D(0), D(0), D(0), D(100))],
            "events": [
                _purchase_event("purchase.confirmed", "R4", "100.00", "100.00", [], member=None)
            ],
        },
    )


def test_a_receipt_with_a_coupon_code(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a pool of single-use codes worth 10.00 off, with one code, and a member
    m = _enrol(client, admin)
    r = client.post(
        "/api/v1/coupon-pools",
        json={"name": "Ten off", "reward": {"kind": "fixed", "value": "10.00"}, "uses_per_code": 1},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/coupon-pools/{r.json()['id']}/codes/import",
        json={"codes": ["ROWS-0001"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # when the member's receipt of 100.00 carries the code
    _post(client, till, _receipt("R5", m, [_line("MILK", "100.00")], coupons=["ROWS-0001"]))
    # then 10.00 is taken off the line, 10 % of the 90.00 paid is earned, the code has
    # one use, held by this receipt
    _same(
        _rows(rows_program, clock, m, "R5"),
        {
            "purchases": [
                (
                    "R5",
                    "M",
                    "confirmed",
                    D(100),
                    D(10),
                    D(90),
                    None,
                    D(0),
                    D(0),
                    _earned("9.00"),
                    [],
                    [("ROWS-0001", "applied")],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [("R5", 1, "MILK", D(1), D(100), D(10), D(0), D(0), D(90))],
            "earnings": [("R5", 1, "BONUS", D(9))],
            "rules": [("R5", "base", "BONUS", "earn", None, "M", None, D(9), False)],
            "entries": [
                ("purchase:R5:earn:BONUS", "earn", "BONUS", D(9), "M", "R5", None, OCCURRED)
            ],
            "postings": [
                ("purchase:R5:earn:BONUS", "issuance", "BONUS", None, D(-9), None),
                (
                    "purchase:R5:earn:BONUS",
                    "member",
                    "BONUS",
                    "M",
                    D(9),
                    "lot:purchase:R5:earn:BONUS",
                ),
            ],
            "lots": [("lot:purchase:R5:earn:BONUS", D(9), D(9), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(9), D(0)),
            ],
            "coupons": [("ROWS-0001", 1)],
            "coupon_uses": [("ROWS-0001", "R5", "M", D(10), None)],
            "events": [
                _purchase_event(
                    "purchase.confirmed", "R5", "100.00", "90.00", _earned("9.00"), discount="10.00"
                ),
                (
                    "coupon.redeemed",
                    "M",
                    {
                        "member_id": "M",
                        "coupon_id": "coupon:ROWS-0001",
                        "code": "ROWS-0001",
                        "pool": "Ten off",
                        "pool_id": "pool",
                        "purchase_id": "R5",
                        "discount": "10.00",
                    },
                ),
                _points_earned("R5", "9.00"),
            ],
        },
    )


def test_a_held_receipt_then_its_commit(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member holding 50.00
    m = _enrol(client, admin)
    _seed(rows_program, m, "seed", "50.00")
    # when the till holds a receipt of 100.00 paying 20.00 with points
    held = _post(
        client,
        till,
        _receipt("R6", m, [_line("MILK", "100.00")], hold=True,
                 redeem={"currency": "BONUS", "amount": "20.00"}),
    )  # fmt: skip
    # then the points are reserved (moved to the held account), nothing is earned yet
    # (what will be earned is recorded per line), the hold lasts the programme's 15 minutes
    common = {
        "lines": [("R6", 1, "MILK", D(1), D(100), D(0), D(20), D(20), D(80))],
        "earnings": [("R6", 1, "BONUS", D(8))],
        "rules": [("R6", "base", "BONUS", "earn", None, "M", None, D(8), False)],
    }
    seed = [
        ("seed", "issuance", "BONUS", None, D(-50), None),
        ("seed", "member", "BONUS", "M", D(50), "lot:seed"),
    ]
    redeem = [
        ("purchase:R6:redeem", "held", "BONUS", None, D(20), None),
        ("purchase:R6:redeem", "member", "BONUS", "M", D(-20), "lot:seed"),
    ]
    _same(
        _rows(rows_program, clock, m, "R6"),
        {
            **common,
            "purchases": [
                (
                    "R6",
                    "M",
                    "held",
                    D(100),
                    D(0),
                    D(80),
                    "BONUS",
                    D(20),
                    D(20),
                    _earned("8.00"),
                    _redeemed("20.00"),
                    [],
                    dt.timedelta(minutes=15),
                    None,
                    NOW,
                    None,
                    None,
                ),
            ],
            "entries": [
                ("purchase:R6:redeem", "redeem", "BONUS", D(20), "M", "R6", None, OCCURRED),
                ("seed", "adjust", "BONUS", D(50), "M", None, None, NOW),
            ],
            "postings": redeem + seed,
            "lots": [("lot:seed", D(50), D(30), utc(2026, 1, 1), None)],
            "accounts": [
                ("held", "BONUS", None, D(0), D(0)),
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(30), D(0)),
            ],
            "events": [
                _purchase_event(
                    "purchase.held", "R6", "100.00", "80.00", _earned("8.00"), _redeemed("20.00")
                ),
            ],
        },
    )
    # when the fiscal receipt prints and the till commits the hold
    r = client.post(
        f"/api/v1/purchases/{held['id']}/commit", json={"receipt_number": "FN-1"}, headers=till
    )
    assert r.status_code == 200, r.text
    # then the reserved points move from held to redeemed, 8.00 is earned as a lot
    _same(
        _rows(rows_program, clock, m, "R6"),
        {
            **common,
            "purchases": [
                (
                    "R6",
                    "M",
                    "confirmed",
                    D(100),
                    D(0),
                    D(80),
                    "BONUS",
                    D(20),
                    D(20),
                    _earned("8.00"),
                    _redeemed("20.00"),
                    [],
                    dt.timedelta(minutes=15),
                    "FN-1",
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "entries": [
                ("purchase:R6:earn:BONUS", "earn", "BONUS", D(8), "M", "R6", None, OCCURRED),
                ("purchase:R6:redeem", "redeem", "BONUS", D(20), "M", "R6", None, OCCURRED),
                ("purchase:R6:settle", "settle", "BONUS", D(20), "M", "R6", None, NOW),
                ("seed", "adjust", "BONUS", D(50), "M", None, None, NOW),
            ],
            "postings": (
                redeem
                + seed
                + [
                    ("purchase:R6:earn:BONUS", "issuance", "BONUS", None, D(-8), None),
                    (
                        "purchase:R6:earn:BONUS",
                        "member",
                        "BONUS",
                        "M",
                        D(8),
                        "lot:purchase:R6:earn:BONUS",
                    ),
                    ("purchase:R6:settle", "held", "BONUS", None, D(-20), None),
                    ("purchase:R6:settle", "redemption", "BONUS", None, D(20), None),
                ]
            ),
            "lots": [
                ("lot:purchase:R6:earn:BONUS", D(8), D(8), AVAILABLE, EXPIRES),
                ("lot:seed", D(50), D(30), utc(2026, 1, 1), None),
            ],
            "accounts": [
                ("held", "BONUS", None, D(0), D(0)),
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(38), D(0)),
                ("redemption", "BONUS", None, D(0), D(0)),
            ],
            "events": [
                _purchase_event(
                    "purchase.held", "R6", "100.00", "80.00", _earned("8.00"), _redeemed("20.00")
                ),
                _purchase_event(
                    "purchase.confirmed",
                    "R6",
                    "100.00",
                    "80.00",
                    _earned("8.00"),
                    _redeemed("20.00"),
                    occurred_at=STORED,
                ),
                _points_earned("R6", "8.00"),
                _points_redeemed("R6", "20.00"),
            ],
        },
    )


def test_a_confirmed_receipt_cancelled(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member's confirmed receipt of 100.00 that earned 10.00 (still pending)
    m = _enrol(client, admin)
    p = _post(client, till, _receipt("R7", m, [_line("MILK", "100.00")]))
    # when the till cancels it
    r = client.post(f"/api/v1/purchases/{p['id']}/cancel", headers=till)
    assert r.status_code == 200, r.text
    # then the earning is reversed from its own lot, the rules' draws are released, the
    # receipt is cancelled and 100.00 is due back
    lot = "lot:purchase:R7:earn:BONUS"
    _same(
        _rows(rows_program, clock, m, "R7"),
        {
            "purchases": [
                (
                    "R7",
                    "M",
                    "cancelled",
                    D(100),
                    D(0),
                    D(100),
                    None,
                    D(0),
                    D(0),
                    _earned("10.00"),
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    NOW,
                ),
            ],
            "lines": [("R7", 1, "MILK", D(1), D(100), D(0), D(0), D(0), D(100))],
            "earnings": [("R7", 1, "BONUS", D(10))],
            "rules": [("R7", "base", "BONUS", "earn", None, "M", None, D(10), True)],
            "entries": [
                (
                    "purchase:R7:cancel:revoke:BONUS",
                    "cancel",
                    "BONUS",
                    D(10),
                    "M",
                    "R7",
                    "purchase:R7:earn:BONUS",
                    NOW,
                ),
                ("purchase:R7:earn:BONUS", "earn", "BONUS", D(10), "M", "R7", None, OCCURRED),
            ],
            "postings": [
                ("purchase:R7:cancel:revoke:BONUS", "issuance", "BONUS", None, D(10), None),
                ("purchase:R7:cancel:revoke:BONUS", "member", "BONUS", "M", D(-10), lot),
                ("purchase:R7:earn:BONUS", "issuance", "BONUS", None, D(-10), None),
                ("purchase:R7:earn:BONUS", "member", "BONUS", "M", D(10), lot),
            ],
            "lots": [(lot, D(10), D(0), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(0), D(0)),
            ],
            "events": [
                _purchase_event("purchase.confirmed", "R7", "100.00", "100.00", _earned("10.00")),
                _points_earned("R7", "10.00"),
                _purchase_event(
                    "purchase.cancelled",
                    "R7",
                    "100.00",
                    "100.00",
                    _earned("10.00"),
                    refund_due="100.00",
                    occurred_at=STORED,
                ),
            ],
        },
    )


def test_a_partial_return(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member's receipt of 2 × 50.00 milk and 50.00 bread, 15.00 earned
    m = _enrol(client, admin)
    p = _post(
        client, till, _receipt("R8", m, [_line("MILK", "50.00", "2"), _line("BREAD", "50.00")])
    )
    # when one of the two milks is returned
    r = client.post(
        f"/api/v1/purchases/{p['id']}/returns",
        json={"external_id": "RET1", "lines": [{"line_no": 1, "quantity": "1"}]},
        headers=till,
    )
    assert r.status_code == 201, r.text
    # then 50.00 is refunded and half of line 1's 10.00 (5.00) is taken back from the lot;
    # the receipt stays confirmed and its rules' draws are kept
    lot = "lot:purchase:R8:earn:BONUS"
    earned = _earned("15.00")
    _same(
        _rows(rows_program, clock, m, "R8"),
        {
            "purchases": [
                (
                    "R8",
                    "M",
                    "confirmed",
                    D(150),
                    D(0),
                    D(150),
                    None,
                    D(0),
                    D(0),
                    earned,
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [
                ("R8", 1, "MILK", D(2), D(100), D(0), D(0), D(0), D(100)),
                ("R8", 2, "BREAD", D(1), D(50), D(0), D(0), D(0), D(50)),
            ],
            "earnings": [("R8", 1, "BONUS", D(10)), ("R8", 2, "BONUS", D(5))],
            "rules": [("R8", "base", "BONUS", "earn", None, "M", None, D(15), False)],
            "entries": [
                ("purchase:R8:earn:BONUS", "earn", "BONUS", D(15), "M", "R8", None, OCCURRED),
                (
                    "return:RET1:revoke:BONUS",
                    "return",
                    "BONUS",
                    D(5),
                    "M",
                    "R8",
                    "purchase:R8:earn:BONUS",
                    NOW,
                ),
            ],
            "postings": [
                ("purchase:R8:earn:BONUS", "issuance", "BONUS", None, D(-15), None),
                ("purchase:R8:earn:BONUS", "member", "BONUS", "M", D(15), lot),
                ("return:RET1:revoke:BONUS", "issuance", "BONUS", None, D(5), None),
                ("return:RET1:revoke:BONUS", "member", "BONUS", "M", D(-5), lot),
            ],
            "lots": [(lot, D(15), D(10), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(10), D(0)),
            ],
            "returns": [("RET1", "R8", D(50), NOW)],
            "return_lines": [("RET1", 1, D(1), D(50), D(0))],
            "events": [
                _purchase_event("purchase.confirmed", "R8", "150.00", "150.00", earned),
                _points_earned("R8", "15.00"),
                _purchase_event(
                    "purchase.returned",
                    "R8",
                    "150.00",
                    "150.00",
                    earned,
                    occurred_at=STORED,
                    **{
                        "return": {
                            "id": "RET1",
                            "purchase_id": "R8",
                            "external_id": "RET1",
                            "created_at": NOW,
                            "refund_due": "50.00",
                            "points_restored": [],
                            "points_revoked": [{"currency": "BONUS", "amount": "5.00"}],
                            "lines": [
                                {
                                    "line_no": 1,
                                    "quantity": "1",
                                    "refund": "50.00",
                                    "points_restored": "0.00",
                                    "points_revoked": [{"currency": "BONUS", "amount": "5.00"}],
                                }
                            ],
                        }
                    },
                ),
            ],
        },
    )


def test_a_capped_rule_and_a_campaign_budget(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given a member
    m = _enrol(client, admin)
    # when the member buys 5 coffees at 10.00 and a bread at 40.00 on Saturday 5 December
    _post(
        client,
        till,
        _receipt(
            "R9", m, [_line("COFFEE", "10.00", "5", "cafe"), _line("BREAD", "40.00", "1", "bakery")]
        ),
    )
    # then the base rule gives 10 % (5.00 + 4.00), the cup rule 1 a cup cut to its cap of
    # 3 a week (the week from Monday 30 November), drawn on the member's usage, and the
    # bread rule 5 % of 40.00 (2.00), drawn on its campaign's budget
    week = dt.date(2026, 11, 30)
    _same(
        _rows(rows_program, clock, m, "R9"),
        {
            "purchases": [
                (
                    "R9",
                    "M",
                    "confirmed",
                    D(90),
                    D(0),
                    D(90),
                    None,
                    D(0),
                    D(0),
                    _earned("14.00"),
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [
                ("R9", 1, "COFFEE", D(5), D(50), D(0), D(0), D(0), D(50)),
                ("R9", 2, "BREAD", D(1), D(40), D(0), D(0), D(0), D(40)),
            ],
            "earnings": [("R9", 1, "BONUS", D(8)), ("R9", 2, "BONUS", D(6))],
            "rules": [
                ("R9", "base", "BONUS", "earn", None, "M", None, D(9), False),
                ("R9", "bread-bonus", "BONUS", "earn", "bread-week", "M", None, D(2), False),
                ("R9", "cup-points", "BONUS", "earn", None, "M", week, D(3), False),
            ],
            "usage": [("cup-points", "M", week, "BONUS", D(3))],
            "budgets": [("bread-week", "BONUS", D(2))],
            "entries": [
                ("purchase:R9:earn:BONUS", "earn", "BONUS", D(14), "M", "R9", None, OCCURRED)
            ],
            "postings": [
                ("purchase:R9:earn:BONUS", "issuance", "BONUS", None, D(-14), None),
                (
                    "purchase:R9:earn:BONUS",
                    "member",
                    "BONUS",
                    "M",
                    D(14),
                    "lot:purchase:R9:earn:BONUS",
                ),
            ],
            "lots": [("lot:purchase:R9:earn:BONUS", D(14), D(14), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(14), D(0)),
            ],
            "events": [
                _purchase_event("purchase.confirmed", "R9", "90.00", "90.00", _earned("14.00")),
                _points_earned("R9", "14.00"),
            ],
        },
    )


def test_a_receipt_that_moves_the_member_up_a_tier(
    db: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
) -> None:
    # given the programme with tiers (gold from 500.00 spent in a year) and a new member
    _apply(db, PROGRAM + TIERS)
    m = _enrol(client, admin)
    # when the member spends 600.00
    _post(client, till, _receipt("R10", m, [_line("CHEESE", "600.00")]))
    # then the member is gold (from no tier: a new member has none until a receipt is
    # evaluated, even with a level from 0), the change is recorded at the receipt's moment
    # with what qualified it, and ``tier.changed`` is written after the receipt's events
    _same(
        _rows(db, clock, m, "R10"),
        {
            "purchases": [
                (
                    "R10",
                    "M",
                    "confirmed",
                    D(600),
                    D(0),
                    D(600),
                    None,
                    D(0),
                    D(0),
                    _earned("60.00"),
                    [],
                    [],
                    None,
                    None,
                    NOW,
                    NOW,
                    None,
                ),
            ],
            "lines": [("R10", 1, "CHEESE", D(1), D(600), D(0), D(0), D(0), D(600))],
            "earnings": [("R10", 1, "BONUS", D(60))],
            "rules": [("R10", "base", "BONUS", "earn", None, "M", None, D(60), False)],
            "entries": [
                ("purchase:R10:earn:BONUS", "earn", "BONUS", D(60), "M", "R10", None, OCCURRED)
            ],
            "postings": [
                ("purchase:R10:earn:BONUS", "issuance", "BONUS", None, D(-60), None),
                (
                    "purchase:R10:earn:BONUS",
                    "member",
                    "BONUS",
                    "M",
                    D(60),
                    "lot:purchase:R10:earn:BONUS",
                ),
            ],
            "lots": [("lot:purchase:R10:earn:BONUS", D(60), D(60), AVAILABLE, EXPIRES)],
            "accounts": [
                ("issuance", "BONUS", None, D(0), D(0)),
                ("member", "BONUS", "M", D(60), D(0)),
            ],
            "tier": "gold",
            "member_tiers": [(None, None, None, OCCURRED)],
            "tier_changes": [(None, "gold", "upgrade", OCCURRED, "system:tiers", D(600), None)],
            "events": [
                _purchase_event("purchase.confirmed", "R10", "600.00", "600.00", _earned("60.00")),
                _points_earned("R10", "60.00"),
                (
                    "tier.changed",
                    "M",
                    {
                        "member_id": "M",
                        "from": None,
                        "from_name": None,
                        "to": "gold",
                        "to_name": "Gold",
                        "reason": "upgrade",
                        "at": "2026-12-05T11:00:00+00:00",
                        "valid_until": None,
                    },
                ),
            ],
        },
    )


@pytest.mark.parametrize("kind", ["member", "hold", "no member"])
def test_the_same_receipt_twice_writes_nothing_more(
    rows_program: Database,
    client: TestClient,
    admin: dict[str, str],
    till: dict[str, str],
    clock: Clock,
    kind: str,
) -> None:
    # given a receipt of 100.00 recorded once: a member's that spent all their 10.00 and
    # earned 9.00 (on PostgreSQL, the hot path's), the same held, or one without a member
    m = _enrol(client, admin)
    _seed(rows_program, m, "seed", "10.00")
    redeem = {"currency": "BONUS", "amount": "10.00"}
    body = {
        "member": _receipt("R11", m, [_line("MILK", "100.00")], redeem=redeem),
        "hold": _receipt("R11", m, [_line("MILK", "100.00")], redeem=redeem, hold=True),
        "no member": _receipt("R11", None, [_line("MILK", "100.00")]),
    }[kind]
    first = _post(client, till, body)
    before = _rows(rows_program, clock, m, "R11")
    seed = ("seed", "adjust", "BONUS", D(10), "M", None, None, NOW)
    earn = ("purchase:R11:earn:BONUS", "earn", "BONUS", D(9), "M", "R11", None, OCCURRED)
    redeemed = ("purchase:R11:redeem", "redeem", "BONUS", D(10), "M", "R11", None, OCCURRED)
    assert (
        before["entries"]
        == {
            "member": [earn, redeemed, seed],
            "hold": [redeemed, seed],
            "no member": [seed],
        }[kind]
    )
    assert [p[2] for p in before["purchases"]] == ["held" if kind == "hold" else "confirmed"]
    # when the till sends it again (the points are gone now)
    again = _post(client, till, body, status=200)
    # then it answers the first purchase and not one row more is written
    assert again == first
    _same(_rows(rows_program, clock, m, "R11"), before)
