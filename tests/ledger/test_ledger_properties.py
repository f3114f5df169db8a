"""Random sequences of ledger operations; every invariant is checked after each step.

A model (plain Python) keeps every member's lots and debt and says what each operation must
do — what a redemption may take, what a reversal gives back, what has expired — the
database must agree with it, and with ``kopilka ledger verify``, at every step.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass, field
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
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.adjustments import service as adjustments
from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Account, Entry
from kopilka.ledger.verify import verify
from tests.ledger.conftest import Clock, MakeMember

amounts = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)
small_amounts = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)
TZ = "Europe/Moscow"  # the test programme's
ADJUST_LIFE_DAYS = 365  # BONUS ``expires_after_days``


# ---------------------------------------------------------------------------- the model
# Plain Python restating docs/ledger.md: lots debited FIFO by expiry (never-expiring last,
# ties by availability, then age), debts repaid first from available lots, reversals giving
# back the lots they drew from. The database must agree with it after every step.


@dataclass
class MLot:
    seq: int  # creation order (the database's lot ids grow the same way)
    remaining: D
    available_at: dt.datetime
    expires_at: dt.datetime | None

    def open_at(self, at: dt.datetime) -> bool:
        return (
            self.remaining > 0
            and self.available_at <= at
            and (self.expires_at is None or self.expires_at > at)
        )


Posting = tuple[MLot | None, D]  # a wallet posting; no lot: the debt moves


@dataclass
class MEntry:
    member: uuid.UUID
    amount: D
    postings: list[Posting]
    reverses: uuid.UUID | None = None


@dataclass
class Model:
    lots: dict[uuid.UUID, list[MLot]] = field(default_factory=dict)
    debt: dict[uuid.UUID, D] = field(default_factory=dict)
    entries: dict[uuid.UUID, MEntry] = field(default_factory=dict)
    seq: int = 0

    def add_member(self, m: uuid.UUID) -> None:
        self.lots[m], self.debt[m] = [], D(0)

    def new_lot(
        self, m: uuid.UUID, amount: D, available_at: dt.datetime, expires_at: dt.datetime | None
    ) -> MLot:
        self.seq += 1
        lot = MLot(self.seq, amount, available_at, expires_at)
        self.lots[m].append(lot)
        return lot

    def open_lots(self, m: uuid.UUID, at: dt.datetime) -> list[MLot]:
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        return sorted(
            (lot for lot in self.lots[m] if lot.open_at(at)),
            key=lambda lot: (
                lot.expires_at is None,
                lot.expires_at or never,
                lot.available_at,
                lot.seq,
            ),
        )

    def net(self, m: uuid.UUID) -> D:
        return sum((lot.remaining for lot in self.lots[m]), D(0)) - self.debt[m]

    def redeemable(self, m: uuid.UUID, at: dt.datetime) -> D:
        return max(D(0), sum((x.remaining for x in self.open_lots(m, at)), D(0)) - self.debt[m])

    def pending(self, m: uuid.UUID, at: dt.datetime) -> D:
        return sum(
            (
                lot.remaining
                for lot in self.lots[m]
                if lot.available_at > at and (lot.expires_at is None or lot.expires_at > at)
            ),
            D(0),
        )

    def expired_unwritten(self, m: uuid.UUID, at: dt.datetime) -> list[MLot]:
        return [
            lot
            for lot in self.lots[m]
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= at
        ]

    # -- movements (each appends its wallet postings, in the database's order)

    @staticmethod
    def _draw(lot: MLot | None, amount: D, postings: list[Posting]) -> None:
        if lot is not None:
            lot.remaining += amount
        postings.append((lot, amount))

    def _consume(
        self,
        m: uuid.UUID,
        amount: D,
        at: dt.datetime,
        postings: list[Posting],
        first: MLot | None = None,
    ) -> D:
        lots = [lot for lot in self.open_lots(m, at) if lot is not first]
        if first is not None:
            lots.insert(0, first)
        left = amount
        for lot in lots:
            if left == 0:
                break
            take = min(left, lot.remaining)
            if take > 0:
                self._draw(lot, -take, postings)
                left -= take
        return left

    def _settle(self, m: uuid.UUID, at: dt.datetime, postings: list[Posting]) -> None:
        owed = self.debt[m]
        if owed <= 0:
            return
        repaid = owed - self._consume(m, owed, at, postings)
        if repaid > 0:
            self.debt[m] -= repaid
            postings.append((None, repaid))

    def credit(
        self,
        entry: uuid.UUID,
        m: uuid.UUID,
        amount: D,
        at: dt.datetime,
        available_at: dt.datetime,
        expires_at: dt.datetime | None,
    ) -> None:
        postings: list[Posting] = [(self.new_lot(m, amount, available_at, expires_at), amount)]
        self._settle(m, at, postings)
        self.entries[entry] = MEntry(m, amount, postings)

    def debit(self, entry: uuid.UUID, m: uuid.UUID, amount: D, at: dt.datetime) -> None:
        assert amount <= self.redeemable(m, at)
        postings: list[Posting] = []
        self._settle(m, at, postings)
        assert self._consume(m, amount, at, postings) == 0
        self.entries[entry] = MEntry(m, amount, postings)

    def transfer(self, a: uuid.UUID, b: uuid.UUID, amount: D, at: dt.datetime) -> None:
        assert amount <= self.redeemable(a, at)
        self._settle(a, at, [])
        left = amount
        for lot in self.open_lots(a, at):
            if left == 0:
                break
            take = min(left, lot.remaining)
            lot.remaining -= take
            self.new_lot(b, take, at, lot.expires_at)  # a gift keeps its expiry
            left -= take
        self._settle(b, at, [])

    def _done(self, original: uuid.UUID) -> dict[int | None, D]:
        """Per lot (None: the debt), what the reversals of ``original`` moved."""
        done: dict[int | None, D] = {}
        for e in self.entries.values():
            if e.reverses == original:
                for lot, amount in e.postings:
                    k = lot.seq if lot else None
                    done[k] = done.get(k, D(0)) + amount
        return done

    def reversible(self, original: uuid.UUID) -> D:
        return self.entries[original].amount - abs(sum(self._done(original).values(), D(0)))

    def reverse(self, entry: uuid.UUID, original: uuid.UUID, amount: D, at: dt.datetime) -> None:
        o = self.entries[original]
        m, postings = o.member, []
        if sum(a for _, a in o.postings) > 0:  # a credit: from its own lot first, then FIFO
            made = next(lot for lot, a in o.postings if a > 0 and lot is not None)
            first = made if made.remaining > 0 else None
            left = self._consume(m, amount, at, postings, first=first)
            if left > 0:  # already spent: a debt
                self.debt[m] += left
                postings.append((None, -left))
        else:  # a debit: the lots it drew, the last drawn first
            done = self._done(original)
            left = amount
            for lot, a in reversed(o.postings):
                if left == 0:
                    break
                if a >= 0:
                    continue
                k = lot.seq if lot else None
                give = min(left, -a - done.get(k, D(0)))
                if give <= 0:
                    continue
                done[k] = done.get(k, D(0)) + give
                if lot is None:
                    self.debt[m] -= give
                self._draw(lot, give, postings)
                left -= give
            self._settle(m, at, postings)
        self.entries[entry] = MEntry(m, amount, postings, reverses=original)


def local_midnight_after(moment: dt.datetime, days: int) -> dt.datetime:
    """Points available on day D with a life of N days expire at the start of D + N + 1."""
    zone = zoneinfo.ZoneInfo(TZ)
    day = moment.astimezone(zone).date() + dt.timedelta(days=days + 1)
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


# ---------------------------------------------------------------------------- the machine


def run_machine(db: Database, make_member: MakeMember, clock: Clock) -> None:
    class LedgerMachine(RuleBasedStateMachine):
        credits = Bundle("credits")
        debits = Bundle("debits")

        @initialize()
        def setup(self) -> None:
            self.members = [make_member() for _ in range(3)]
            self.model = Model()
            self.expired: dict[int, D] = {}  # lot → what the model has written off
            for m in self.members:
                self.model.add_member(m)
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
            available_at = at + dt.timedelta(days=pending)
            expires_at = at + dt.timedelta(days=life) if life else None
            with db.session() as s:
                e = ledger.credit(
                    s,
                    key=self.key(),
                    kind="earn",
                    member_id=m,
                    currency="BONUS",
                    amount=amount,
                    actor="t",
                    available_at=available_at,
                    expires_at=expires_at,
                    never_expires=life is None,
                )
                s.commit()
            self.model.credit(e.id, m, amount, at, available_at, expires_at)
            return e.id

        @rule(target=debits, i=st.integers(0, 2), amount=amounts)
        def redeem(self, i: int, amount: D) -> uuid.UUID | None:
            m = self.members[i]
            can = self.model.redeemable(m, clock.at)
            with db.session() as s:
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
            self.model.debit(e.id, m, amount, clock.at)
            return e.id

        @rule(target=debits, i=st.integers(0, 2))
        def redeem_everything(self, i: int) -> uuid.UUID | None:
            m = self.members[i]
            can = self.model.redeemable(m, clock.at)
            if can == 0:
                return None
            with db.session() as s:
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
            self.model.debit(e.id, m, can, clock.at)
            return e.id

        def _adjust(self, m: uuid.UUID, signed: D) -> uuid.UUID:
            with db.session() as s:
                e, _ = adjustments.post(
                    s,
                    member_id=m,
                    currency="BONUS",
                    amount=signed,
                    reason="model check",
                    actor="t",
                    key=self.key(),
                )
                s.commit()
            return e.id

        @rule(target=credits, i=st.integers(0, 2), amount=amounts)
        def adjust_up(self, i: int, amount: D) -> uuid.UUID:
            """A positive correction: a new lot, available at once, with the currency's
            expiry (365 days, to local midnight)."""
            m, at = self.members[i], clock.at
            entry = self._adjust(m, amount)
            expires = local_midnight_after(at, ADJUST_LIFE_DAYS)
            self.model.credit(entry, m, amount, at, at, expires)
            return entry

        @rule(target=debits, i=st.integers(0, 2), amount=small_amounts)
        def adjust_down(self, i: int, amount: D) -> uuid.UUID | None:
            """A negative correction draws FIFO like a redemption; unlike a return it is
            refused rather than leave a debt (``adjustments.post`` debits without
            ``allow_debt``), and it repays a debt first."""
            m, at = self.members[i], clock.at
            can = self.model.redeemable(m, at)
            try:
                entry = self._adjust(m, -amount)
            except Problem as exc:
                assert exc.code == "insufficient_balance"
                assert amount > can
                return None
            assert amount <= can
            self.model.debit(entry, m, amount, at)
            return entry

        @rule(i=st.integers(0, 2), j=st.integers(0, 2), amount=amounts)
        def transfer(self, i: int, j: int, amount: D) -> None:
            a, b = self.members[i], self.members[j]
            if a == b:
                return
            can = self.model.redeemable(a, clock.at)
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
                    assert amount > can
                    return
            assert amount <= can
            self.model.transfer(a, b, amount, clock.at)

        @rule(entry=credits, part=st.sampled_from([None, D("0.5")]))
        def reverse_credit(self, entry: uuid.UUID, part: D | None) -> None:
            self._reverse(entry, part)

        @rule(entry=debits, part=st.sampled_from([None, D("0.5")]))
        def reverse_debit(self, entry: uuid.UUID | None, part: D | None) -> None:
            if entry is not None:
                self._reverse(entry, part)

        def _reverse(self, entry_id: uuid.UUID, part: D | None) -> None:
            left = self.model.reversible(entry_id)
            if left == 0:
                return
            amount = None if part is None else (left * part).quantize(D("0.01"))
            if amount is not None and amount <= 0:
                return
            with db.session() as s:
                original = s.get(Entry, entry_id)
                assert original is not None
                assert ledger.reversible(s, original) == left
                e = ledger.reverse(s, entry_id, key=self.key(), actor="t", amount=amount)
                s.commit()
            self.model.reverse(e.id, entry_id, left if amount is None else amount, clock.at)

        @rule(days=st.integers(1, 10))
        def time_passes(self, days: int) -> None:
            clock.advance(days=days)

        def _written_off(self, s: Session) -> dict[uuid.UUID, tuple[int, D]]:
            """Per member of this run: how many expiry entries, and their total."""
            rows = s.execute(
                select(Entry.member_id, func.count(), func.sum(Entry.amount))
                .where(Entry.kind == "expire", Entry.member_id.in_(self.members))
                .group_by(Entry.member_id)
            ).all()
            found = {m: (n, D(total)) for m, n, total in rows}
            return {m: found.get(m, (0, D(0))) for m in self.members}

        @rule(days=st.sampled_from([0, 3, 31]))
        def expire(self, days: int) -> None:
            """Time passes, then the expiry job runs. The model says which lots have
            expired with points left: each is written off whole, in an entry of its own
            (earlier examples' members may expire too: they share the database)."""
            clock.advance(days=days)
            due = {m: self.model.expired_unwritten(m, clock.at) for m in self.members}
            want = {
                m: (len(lots), sum((lot.remaining for lot in lots), D(0)))
                for m, lots in due.items()
            }
            with db.session() as s:
                before = self._written_off(s)
                ledger.expire_due(s)
                s.commit()
                after = self._written_off(s)
            got = {m: (after[m][0] - before[m][0], after[m][1] - before[m][1]) for m in after}
            assert got == want
            for lots in due.values():
                for lot in lots:
                    lot.remaining = D(0)

        @invariant()
        def ledger_holds(self) -> None:
            if not hasattr(self, "members"):
                return
            at = clock.at
            with db.session() as s:
                assert verify(s, stop_at_first=False) == []
                for m in self.members:
                    acc = s.execute(
                        select(Account).where(Account.member_id == m, Account.kind == "member")
                    ).scalar_one_or_none()
                    held = (acc.balance, acc.debt) if acc else (D(0), D(0))
                    assert held == (self.model.net(m), self.model.debt[m])
                    b = next(x for x in ledger.balances(s, m) if x.currency == "BONUS")
                    open_ = sum((x.remaining for x in self.model.open_lots(m, at)), D(0))
                    assert (b.available, b.pending) == (
                        open_ - self.model.debt[m],
                        self.model.pending(m, at),
                    )
                    assert ledger.redeemable(s, m, "BONUS") == self.model.redeemable(m, at)

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
