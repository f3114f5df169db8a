"""A programme that runs referrals: 200 BONUS to the friend and 300 to the referrer when the
friend's first receipt pays at least 1000 within 30 days, held 14 days; at most two friends
a month per referrer; three friends a day of one referrer are enough to look twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.program import service as program_service
from tests.conftest import TEST_PROGRAM, Clock

REFERRALS = """
referrals:
  friend_reward: {currency: BONUS, amount: "200"}
  referrer_reward: {currency: BONUS, amount: "300"}
  qualifying: {min_paid: "1000.00", within_days: 30}
  hold_days: 14
  limits: {per_referrer_per_month: 2}
  fraud: {max_friends_per_referrer_per_day: 3, disposable_email_domains: [throwaway.example]}
"""
REFERRAL_PROGRAM = TEST_PROGRAM + REFERRALS

# The pinned clock's day: receipts happen an hour before it (15:00 in Moscow).
AT = "2026-12-05T14:00:00+03:00"


def apply(db: Database, text: str) -> None:
    with db.session() as session:
        program_service.apply_program(session, program_service.parse_program(text), actor="test")
        session.commit()
    program_service.invalidate_cache()


@pytest.fixture
def referrals(db: Database, clock: Clock) -> Clock:
    """The referral programme applied, on the pinned clock."""
    apply(db, REFERRAL_PROGRAM)
    return clock


Enrol = Callable[..., dict[str, Any]]


@pytest.fixture
def enrol(client: TestClient, admin: dict[str, str], referrals: Clock) -> Enrol:
    """Enrol a member over the API (``code``: a referrer's referral code); its JSON."""
    n = iter(range(10_000))

    def make(
        code: str | None = None, headers: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"phone": f"+7916777{next(n):04d}", **fields}
        if code is not None:
            body["referral_code"] = code
        r = client.post("/api/v1/members", json=body, headers=headers or admin)
        assert r.status_code == 201, r.text
        got: dict[str, Any] = client.get(f"/api/v1/members/{r.json()['id']}", headers=admin).json()
        return got

    return make


def receipt(external_id: str, card: str, *amounts: str, **extra: Any) -> dict[str, Any]:
    """A receipt of one line per amount (quantity 1), an hour before the pinned clock."""
    body: dict[str, Any] = {
        "external_id": external_id,
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": AT,
        "member": {"card": card},
        "lines": [
            {"sku": f"SKU-{i + 1}", "quantity": "1", "unit_price": a} for i, a in enumerate(amounts)
        ],
    }
    body.update(extra)
    return body


def hold_over(clock: Clock) -> dt.datetime:
    """Move the clock past the 14 days' hold of a receipt made at ``AT``."""
    clock.advance(days=15)
    return clock.at
