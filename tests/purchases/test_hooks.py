"""A receipt hook (``purchases.hooks``) reads with the receipt and writes with it, on either
database (on PostgreSQL inside the hot path's one statement). The hook here keeps a
challenge's progress (receipts of 100 or more) in a row of ``campaign_spend``, standing in
for a table of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from kopilka.apikeys.service import Principal
from kopilka.core.db import Database
from kopilka.core.plan import Plan
from kopilka.purchases import confirmation, hooks, returns
from kopilka.purchases.schemas import PurchaseIn, ReturnIn
from kopilka.rules.models import CampaignSpend
from tests.purchases.conftest import Enrol, receipt

TILL = Principal(kind="api_key", id=str(uuid.uuid4()), role="cashier", store="msk-01")
SPEND = CampaignSpend.__table__


class Challenge:
    name = "challenge"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def columns(self) -> Sequence[ColumnElement[Any]]:
        progress = select(CampaignSpend.spent).where(CampaignSpend.code == "challenge")
        return [progress.scalar_subquery().label("challenge_progress")]

    def settled(self, receipt: hooks.Settled, read: Mapping[str, Any], plan: Plan) -> None:
        self.seen.append(("settled", read["challenge_progress"]))
        if receipt.total_due >= 100:
            plan.upsert_add(
                SPEND,  # type: ignore[arg-type]
                ("code",),
                ("spent",),
                [{"code": "challenge", "currency": "BONUS", "spent": D(1)}],
            )

    def reversed(self, receipt: hooks.Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        self.seen.append((receipt.kind, read["challenge_progress"]))
        if receipt.kind == "cancel":
            plan.add_to(SPEND, "code", ("spent",), {"challenge": [D(-1)]})  # type: ignore[arg-type]

    def after_settled(
        self, session: Session, receipt: hooks.Settled, read: Mapping[str, Any]
    ) -> None:
        # after the receipt's rows: its own progress is written, in the same transaction
        written = session.scalar(
            select(CampaignSpend.spent).where(CampaignSpend.code == "challenge")
        )
        self.seen.append(("after settled", written))

    def after_reversed(
        self, session: Session, receipt: hooks.Reversed, read: Mapping[str, Any]
    ) -> None:
        written = session.scalar(
            select(CampaignSpend.spent).where(CampaignSpend.code == "challenge")
        )
        self.seen.append(("after " + receipt.kind, written))


@pytest.fixture
def challenge() -> Iterator[Challenge]:
    hook = Challenge()
    hooks.register(hook)
    yield hook
    hooks.unregister(hook.name)


def test_a_hook_reads_and_writes_with_each_receipt(
    program: Database, enrol: Enrol, challenge: Challenge
) -> None:
    # given a member and a registered challenge
    card = enrol()["card_number"]
    # when two receipts are confirmed and the second is cancelled
    ids = []
    for n in (1, 2):
        with program.session() as s:
            status, body = confirmation.confirm(
                s, PurchaseIn.model_validate(receipt(f"H-{n}", card)), TILL
            )
            s.commit()
        assert status == 201
        ids.append(uuid.UUID(body["id"]))
    with program.session() as s:
        returns.cancel(s, ids[1], TILL)
        s.commit()
    # then the hook saw the progress before each receipt, and after its rows were written
    # (in the receipt's transaction); the progress is one
    assert challenge.seen == [
        ("settled", None),
        ("after settled", D(1)),
        ("settled", D(1)),
        ("after settled", D(2)),
        ("cancel", D(2)),
        ("after cancel", D(1)),
    ]
    with program.session() as s:
        progress = s.scalar(select(CampaignSpend.spent).where(CampaignSpend.code == "challenge"))
    assert progress == D(1)


class Witness:
    """A hook that only keeps what it is told of each receipt."""

    name = "witness"

    def __init__(self) -> None:
        self.settled_seen: list[hooks.Settled] = []
        self.reversed_seen: list[hooks.Reversed] = []

    def columns(self) -> Sequence[ColumnElement[Any]]:
        return []

    def settled(self, receipt: hooks.Settled, read: Mapping[str, Any], plan: Plan) -> None:
        self.settled_seen.append(receipt)

    def reversed(self, receipt: hooks.Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        self.reversed_seen.append(receipt)

    def after_settled(
        self, session: Session, receipt: hooks.Settled, read: Mapping[str, Any]
    ) -> None:
        pass

    def after_reversed(
        self, session: Session, receipt: hooks.Reversed, read: Mapping[str, Any]
    ) -> None:
        pass


def test_a_hook_is_told_the_lines_settled_and_the_lines_returned(
    program: Database, enrol: Enrol
) -> None:
    # given a member and a hook that keeps what it is told
    witness = Witness()
    hooks.register(witness)
    try:
        card = enrol()["card_number"]
        # when the worked receipt is confirmed and one of its two milks returned
        with program.session() as s:
            status, body = confirmation.confirm(
                s, PurchaseIn.model_validate(receipt("W-1", card)), TILL
            )
            s.commit()
        assert status == 201
        with program.session() as s:
            returns.create_return(
                s,
                uuid.UUID(body["id"]),
                ReturnIn.model_validate(
                    {"external_id": "W-1-R", "lines": [{"line_no": 1, "quantity": "1"}]}
                ),
                TILL,
            )
            s.commit()
    finally:
        hooks.unregister(witness.name)
    # then the settled receipt carried its lines as recorded
    (settled,) = witness.settled_seen
    assert [(ln.line_no, ln.sku, ln.category, ln.quantity) for ln in settled.lines] == [
        (1, "MILK-1L", "dairy", D(2)),
        (2, "COFFEE-250", "grocery", D(1)),
    ]
    assert [ln.total_due for ln in settled.lines] == [D("179.80"), D("450.00")]
    assert [ln.amount for ln in settled.lines] == [D("179.80"), D("450.00")]
    # and the return, the line and quantity it took back, its refund and the points revoked
    (back,) = witness.reversed_seen
    assert back.kind == "return"
    assert back.lines == (hooks.ReversedLine(1, D(1), D("89.90")),)
    assert back.refund == D("89.90")
    assert back.revoked == {"BONUS": D("4.50")}  # half the line's 8.99, rounded up
