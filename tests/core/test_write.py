"""The plan executor (``core.write``) writes the same rows on either database."""

from __future__ import annotations

import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import select, text

from kopilka.core.db import Database
from kopilka.core.plan import Contended, Plan
from kopilka.core.write import retrying, write
from kopilka.ledger.models import Account, Entry, Lot, Posting
from kopilka.rules.models import CampaignSpend
from tests.conftest import PINNED, Clock

ACCOUNTS = Account.__table__
ENTRIES = Entry.__table__
LOTS = Lot.__table__
POSTINGS = Posting.__table__
SPEND = CampaignSpend.__table__


def _spend(db: Database) -> dict[str, D]:
    with db.session() as s:
        rows = s.execute(select(CampaignSpend.code, CampaignSpend.spent)).all()
        return dict(rows)


def test_rows_name_the_ids_the_same_plan_makes(program: Database, clock: Clock) -> None:
    # given a plan of an account, an entry, a lot of that account and a posting naming both
    plan = Plan()
    account = plan.new_id(ACCOUNTS)  # type: ignore[arg-type]
    lot = plan.new_id(LOTS)  # type: ignore[arg-type]
    entry = uuid.uuid4()
    plan.insert(
        ACCOUNTS,  # type: ignore[arg-type]
        [{"id": account, "currency": "BONUS", "kind": "test", "member_id": None,
          "balance": D("5"), "debt": D("0"), "created_at": PINNED}],
    )  # fmt: skip
    plan.insert(
        ENTRIES,  # type: ignore[arg-type]
        [{"id": entry, "key": "k1", "kind": "test", "currency": "BONUS", "amount": D("5"),
          "member_id": None, "purchase_id": None, "reverses_id": None, "occurred_at": PINNED,
          "created_at": PINNED, "actor": "test", "description": "d"}],
    )  # fmt: skip
    plan.insert(
        LOTS,  # type: ignore[arg-type]
        [{"id": lot, "account_id": account, "entry_id": entry, "amount": D("5"),
          "remaining": D("4.5"), "available_at": PINNED, "expires_at": None}],
    )  # fmt: skip
    plan.insert(
        POSTINGS,  # type: ignore[arg-type]
        [
            {"entry_id": entry, "account_id": account, "currency": "BONUS", "amount": D("5"),
             "lot_id": lot},
            {"entry_id": entry, "account_id": account, "currency": "BONUS", "amount": D("-5"),
             "lot_id": None},
        ],
    )  # fmt: skip
    # when it is written
    with program.session() as s:
        write(s, plan)
        s.commit()
    # then the lot belongs to the account made, and the posting names that lot
    with program.session() as s:
        acc = s.execute(select(Account).where(Account.kind == "test")).scalar_one()
        made = s.execute(select(Lot).where(Lot.entry_id == entry)).scalar_one()
        postings = s.execute(
            select(Posting.account_id, Posting.amount, Posting.lot_id)
            .where(Posting.entry_id == entry)
            .order_by(Posting.amount)
        ).all()
    assert (acc.currency, acc.balance, acc.debt, acc.created_at) == ("BONUS", D("5"), 0, PINNED)
    assert (made.account_id, made.amount, made.remaining) == (acc.id, D("5"), D("4.5"))
    assert [tuple(p) for p in postings] == [(acc.id, D(-5), None), (acc.id, D(5), made.id)]


def test_add_to_and_upsert_add_move_counters(program: Database) -> None:
    # given a campaign that has spent 10
    first = Plan()
    first.insert(SPEND, [{"code": "A", "currency": "BONUS", "spent": D("10")}])  # type: ignore[arg-type]
    with program.session() as s:
        write(s, first)
        s.commit()
    # when 3 more and a new campaign's 4 are added (upsert), then 2 and 5 more (added twice)
    upsert = Plan()
    upsert.upsert_add(
        SPEND,  # type: ignore[arg-type]
        ("code",),
        ("spent",),
        [{"code": "A", "currency": "BONUS", "spent": D("3")},
         {"code": "B", "currency": "BONUS", "spent": D("4")}],
    )  # fmt: skip
    add = Plan()
    add.add_to(SPEND, "code", ("spent",), {"A": [D("2")]})  # type: ignore[arg-type]
    add.add_to(SPEND, "code", ("spent",), {"A": [D("5")], "B": [D("1")]})  # type: ignore[arg-type]
    with program.session() as s:
        write(s, upsert)
        write(s, add)
        s.commit()
    # then
    assert len(add.parts) == 1  # one statement updates a row once
    assert _spend(program) == {"A": D("20"), "B": D("5")}


def test_an_update_of_a_changed_row_is_contended(program: Database) -> None:
    # given a campaign that has spent 10
    first = Plan()
    first.insert(SPEND, [{"code": "A", "currency": "BONUS", "spent": D("10")}])  # type: ignore[arg-type]
    with program.session() as s:
        write(s, first)
        s.commit()
    # when it is set to 11 where it still holds 10: it takes
    taken = Plan()
    taken.update_if_unchanged(
        SPEND,  # type: ignore[arg-type]
        "code",
        [("A", {"spent": D("10")}, {"spent": D("11")})],
        "budget A",
    )
    with program.session() as s:
        write(s, taken)
        s.commit()
    assert _spend(program) == {"A": D("11")}
    # when the same plan (read when it held 10) is written again: Contended
    with program.session() as s:
        with pytest.raises(Contended) as caught:
            write(s, taken)
        s.rollback()
    assert caught.value.part == "budget A"
    assert _spend(program) == {"A": D("11")}


def test_retrying_runs_a_contended_attempt_once_more(program: Database) -> None:
    calls: list[bool] = []

    def attempt(retry: bool) -> str:
        calls.append(retry)
        if not retry:
            raise Contended("budget A")
        return "done"

    with program.session() as s:
        assert retrying(s, attempt) == "done"
    assert calls == [False, True]


def test_retrying_gives_up_after_one_retry(program: Database) -> None:
    calls: list[bool] = []

    def attempt(retry: bool) -> str:
        calls.append(retry)
        raise Contended("tier")

    with program.session() as s, pytest.raises(Contended):
        retrying(s, attempt)
    assert calls == [False, True]


def test_a_plan_that_makes_ids_keeps_a_generic_plan(program: Database) -> None:
    # regression: the count of ids a plan makes was a parameter of generate_series, so the
    # generic plan of the prepared statement counted on 1,000 rows and PostgreSQL planned
    # every receipt anew (0.8 ms of its 1.2-2.2 ms); the count is now in the statement's text
    if program.dialect != "postgresql":
        pytest.skip("prepared statements' plans are PostgreSQL's")
    # given the same shape of plan written eight times on one connection
    with program.session() as s:
        for n in range(8):
            plan = Plan()
            account = plan.new_id(ACCOUNTS)  # type: ignore[arg-type]
            plan.insert(
                ACCOUNTS,  # type: ignore[arg-type]
                [{"id": account, "currency": "BONUS", "kind": f"generic-{n}",
                  "member_id": None, "balance": D("0"), "debt": D("0"), "created_at": PINNED}],
            )  # fmt: skip
            write(s, plan)
        # then PostgreSQL serves it from a generic plan once it has seen it five times
        plans = s.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%generate_series%' AND statement LIKE '%ledger_accounts%'"
            )
        ).all()
        s.rollback()
    # (the pooled connection may hold other statements of that shape from earlier tests:
    # this one's is the one planned custom five times, then generic)
    assert any(g >= 1 and c == 5 for g, c in plans), plans
