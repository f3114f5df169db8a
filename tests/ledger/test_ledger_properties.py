"""Random sequences of ledger operations; every invariant is checked after each step.

A model (plain Python) tracks what each member should hold; the database must agree with
it and with ``kopilka ledger verify`` at every step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Account, Entry, Lot
from kopilka.ledger.verify import verify
from tests.ledger.conftest import Clock, MakeMember

amounts = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)


def run_machine(db: Database, make_member: MakeMember, clock: Clock) -> None:
    class LedgerMachine(RuleBasedStateMachine):
        credits = Bundle("credits")
        debits = Bundle("debits")

        @initialize()
        def setup(self) -> None:
            self.members = [make_member() for _ in range(3)]
            # model: member → net (available + pending + expired-unwritten - debt)
            self.net = dict.fromkeys(self.members, D(0))
            self.n = 0

        def key(self) -> str:
            self.n += 1
            return f"k{self.n}-{uuid.uuid4().hex[:6]}"

        @rule(
            target=credits,
            i=st.integers(0, 2),
            amount=amounts,
            pending=st.sampled_from([0, 0, 3]),
            life=st.sampled_from([None, 2, 30]),
        )
        def earn(self, i: int, amount: D, pending: int, life: int | None) -> uuid.UUID:
            m = self.members[i]
            at = clock.at
            with db.session() as s:
                e = ledger.credit(
                    s,
                    key=self.key(),
                    kind="earn",
                    member_id=m,
                    currency="BONUS",
                    amount=amount,
                    actor="t",
                    available_at=at + dt.timedelta(days=pending),
                    expires_at=at + dt.timedelta(days=life) if life else None,
                    never_expires=life is None,
                )
                s.commit()
            self.net[m] += amount
            return e.id

        @rule(target=debits, i=st.integers(0, 2), amount=amounts)
        def redeem(self, i: int, amount: D) -> uuid.UUID | None:
            m = self.members[i]
            with db.session() as s:
                can = ledger.redeemable(s, m, "BONUS")
                try:
                    e = ledger.debit(
                        s,
                        key=self.key(),
                        kind="redeem",
                        member_id=m,
                        currency="BONUS",
                        amount=amount,
                        actor="t",
                    )
                    s.commit()
                except Problem as exc:
                    assert exc.code == "insufficient_balance"
                    assert amount > can
                    return None
            assert amount <= can
            self.net[m] -= amount
            return e.id

        @rule(target=debits, i=st.integers(0, 2))
        def redeem_everything(self, i: int) -> uuid.UUID | None:
            m = self.members[i]
            with db.session() as s:
                can = ledger.redeemable(s, m, "BONUS")
                if can == 0:
                    return None
                e = ledger.debit(
                    s,
                    key=self.key(),
                    kind="redeem",
                    member_id=m,
                    currency="BONUS",
                    amount=can,
                    actor="t",
                )
                s.commit()
                assert ledger.redeemable(s, m, "BONUS") == 0
            self.net[m] -= can
            return e.id

        @rule(i=st.integers(0, 2), j=st.integers(0, 2), amount=amounts)
        def transfer(self, i: int, j: int, amount: D) -> None:
            a, b = self.members[i], self.members[j]
            if a == b:
                return
            with db.session() as s:
                try:
                    ledger.transfer(
                        s,
                        key=self.key(),
                        from_member=a,
                        to_member=b,
                        currency="BONUS",
                        amount=amount,
                        actor="t",
                    )
                    s.commit()
                except Problem as exc:
                    assert exc.code == "insufficient_balance"
                    return
            self.net[a] -= amount
            self.net[b] += amount

        @rule(entry=credits, part=st.sampled_from([None, D("0.5")]))
        def reverse_credit(self, entry: uuid.UUID, part: D | None) -> None:
            self._reverse(entry, part, sign=-1)

        @rule(entry=debits, part=st.sampled_from([None, D("0.5")]))
        def reverse_debit(self, entry: uuid.UUID | None, part: D | None) -> None:
            if entry is not None:
                self._reverse(entry, part, sign=1)

        def _reverse(self, entry_id: uuid.UUID, part: D | None, sign: int) -> None:
            with db.session() as s:
                original = s.get(Entry, entry_id)
                assert original is not None and original.member_id is not None
                left = ledger.reversible(s, original)
                if left == 0:
                    return
                amount = None if part is None else (left * part).quantize(D("0.01"))
                if amount is not None and amount <= 0:
                    return
                ledger.reverse(s, entry_id, key=self.key(), actor="t", amount=amount)
                s.commit()
                moved = left if amount is None else amount
                self.net[original.member_id] += sign * moved

        @rule(days=st.integers(1, 10))
        def time_passes(self, days: int) -> None:
            clock.advance(days=days)

        @rule()
        def expire(self) -> None:
            with db.session() as s:
                # what is expired and unwritten leaves the net now
                before = {m: self._expired_unwritten(s, m) for m in self.members}
                ledger.expire_due(s)
                s.commit()
            for m, amt in before.items():
                self.net[m] -= amt

        def _expired_unwritten(self, s: Session, m: uuid.UUID) -> D:
            lots = s.execute(
                select(Lot)
                .join(Account, Account.id == Lot.account_id)
                .where(Account.member_id == m, Lot.expires_at <= clock.at, Lot.remaining > 0)
            ).scalars()
            return sum((lot.remaining for lot in lots), D(0))

        @invariant()
        def ledger_holds(self) -> None:
            if not hasattr(self, "members"):
                return
            with db.session() as s:
                assert verify(s, stop_at_first=False) == []
                for m in self.members:
                    acc = s.execute(
                        select(Account).where(Account.member_id == m, Account.kind == "member")
                    ).scalar_one_or_none()
                    held = acc.balance if acc else D(0)
                    assert held == self.net[m]
                    b = next(x for x in ledger.balances(s, m) if x.currency == "BONUS")
                    assert b.pending >= 0
                    assert ledger.redeemable(s, m, "BONUS") >= 0

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_random_operations_keep_every_invariant(
    program: Database, make_member: MakeMember, clock: Clock
) -> None:
    run_machine(program, make_member, clock)
