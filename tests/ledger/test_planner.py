"""The ledger planner without a database: exact plans, and properties of lot spending.

Every moment here is fixed (``PINNED`` and days around it): a plan depends on lot dates
only through the ``at`` it is given, never through the clock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.core.errors import Problem
from kopilka.core.money import MAX_AMOUNT
from kopilka.ledger import planner
from kopilka.ledger.planner import NewLot, OpenLot, Posting, Wallet, new_ref

PINNED = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
MEMBER = uuid.UUID("00000000-0000-7000-8000-000000000001")
W = 7  # the member's wallet
W2 = 8  # another member's wallet
COUNTER = 1  # a system account


def day(n: int) -> dt.datetime:
    return PINNED + dt.timedelta(days=n)


def wallet(balance: str = "0", debt: str = "0", id_: int = W) -> Wallet:
    return Wallet(id_, MEMBER, "BONUS", D(balance), D(debt))


def lot(id_: int, remaining: str, expires: int | None, available: int = -10) -> OpenLot:
    return OpenLot(id_, D(remaining), day(available), None if expires is None else day(expires))


def entry(amount: str) -> dict[str, object]:
    return {"key": "k", "amount": D(amount)}


# ---------------------------------------------------------------------------- exact cases


def test_lots_are_spent_oldest_expiry_first_never_expiring_last() -> None:
    # given lots read in no particular order
    lots = [lot(1, "50", None), lot(2, "10", 20), lot(3, "10", 5), lot(4, "10", 12)]
    # when 25 is spent
    takes, left = planner.spend(D("25"), lots)
    # then the lot expiring first goes first, and the never-expiring one is untouched
    assert takes == [(3, D("10")), (4, D("10")), (2, D("5"))]
    assert left == D("0")


def test_lots_expiring_together_go_by_availability_then_age() -> None:
    # given three lots expiring the same moment, two available the same day
    lots = [lot(9, "5", 30, available=-2), lot(8, "5", 30, available=-1), lot(5, "5", 30, -2)]
    # when all is spent
    takes, left = planner.spend(D("15"), lots)
    # then the earliest available first, and of those the older (lower id)
    assert [i for i, _ in takes] == [5, 9, 8]
    assert left == D("0")


def test_a_lot_being_made_is_the_newest() -> None:
    made = OpenLot(new_ref(0), D("5"), day(-1), day(30))
    assert [x.id for x in planner.fifo_order([made, lot(99, "5", 30, -1)])] == [99, new_ref(0)]


def test_spend_says_what_the_lots_do_not_cover() -> None:
    takes, left = planner.spend(D("30"), [lot(1, "10", 5), lot(2, "5", None)])
    assert takes == [(1, D("10")), (2, D("5"))]
    assert left == D("15")


def test_a_debit_takes_oldest_expiry_first() -> None:
    # given three open lots
    lots = [lot(2, "50", 20), lot(3, "100", None), lot(1, "10", 10)]
    # when 30 is debited
    plan = planner.plan_debit(wallet("160"), lots, COUNTER, entry("30"), precision=2, at=PINNED)
    # then 10 from the lot expiring first, 20 from the next, 30 to the counter account
    assert plan.postings == [
        Posting(W, D("-10"), 1),
        Posting(W, D("-20"), 2),
        Posting(COUNTER, D("30"), None),
    ]
    assert plan.lot_moves == {1: D("-10"), 2: D("-20")}
    assert plan.wallet_moves == {W: (D("-30"), D("0"))}
    assert plan.new_lots == []


def test_a_debit_skips_lots_not_yet_available_or_expired() -> None:
    lots = [lot(1, "10", -1), lot(2, "10", 30, available=1), lot(3, "10", 40)]
    plan = planner.plan_debit(wallet("30"), lots, COUNTER, entry("10"), precision=2, at=PINNED)
    assert plan.lot_moves == {3: D("-10")}


def test_a_debit_past_the_available_balance_is_refused() -> None:
    # given 25 available
    lots = [lot(1, "10", 10), lot(2, "15", 20)]
    # when 25.01 is asked
    with pytest.raises(Problem) as caught:
        planner.plan_debit(wallet("25"), lots, COUNTER, entry("25.01"), precision=2, at=PINNED)
    # then insufficient_balance names the field and what is available
    p = caught.value
    assert (p.status, p.code) == (422, "insufficient_balance")
    assert p.detail == "25.00 BONUS available, 25.01 asked"
    assert p.extra == {"available": "25.00"}
    assert [e["field"] for e in p.errors] == ["amount"]


def test_a_debit_of_exactly_the_available_balance_is_planned() -> None:
    lots = [lot(1, "10", 10), lot(2, "15", 20)]
    plan = planner.plan_debit(wallet("25"), lots, COUNTER, entry("25"), precision=2, at=PINNED)
    assert plan.lot_moves == {1: D("-10"), 2: D("-15")}


def test_a_debit_repays_a_debt_first() -> None:
    # given a wallet owing 5 with 10 and 50 in lots
    lots = [lot(1, "10", 10), lot(2, "50", 20)]
    # when 20 is debited
    plan = planner.plan_debit(
        wallet("55", debt="5"), lots, COUNTER, entry("20"), precision=2, at=PINNED
    )
    # then 5 of the first lot repays the debt, then the debit is taken
    assert plan.postings == [
        Posting(W, D("-5"), 1),
        Posting(W, D("5"), None),
        Posting(W, D("-5"), 1),
        Posting(W, D("-15"), 2),
        Posting(COUNTER, D("20"), None),
    ]
    assert plan.lot_moves == {1: D("-10"), 2: D("-15")}
    assert plan.wallet_moves == {W: (D("-20"), D("-5"))}


def test_a_debt_counts_against_what_is_available() -> None:
    with pytest.raises(Problem) as caught:
        planner.plan_debit(
            wallet("5", debt="5"), [lot(1, "10", 10)], COUNTER, entry("6"), precision=2, at=PINNED
        )
    assert caught.value.extra == {"available": "5.00"}


def test_a_debit_allowed_into_debt_owes_what_the_lots_lack() -> None:
    plan = planner.plan_debit(
        wallet("10"), [lot(1, "10", 10)], COUNTER, entry("15"), precision=2, at=PINNED,
        allow_debt=True,
    )  # fmt: skip
    assert plan.postings == [
        Posting(W, D("-10"), 1),
        Posting(W, D("-5"), None),
        Posting(COUNTER, D("15"), None),
    ]
    assert plan.wallet_moves == {W: (D("-15"), D("5"))}


def test_a_credit_makes_a_lot() -> None:
    plan = planner.plan_credit(
        wallet("10"), COUNTER, entry("100"), available_at=day(1), expires_at=day(366), precision=2
    )
    assert plan.new_lots == [NewLot(W, D("100"), D("100"), day(1), day(366))]
    assert plan.postings == [Posting(W, D("100"), new_ref(0)), Posting(COUNTER, D("-100"), None)]
    assert plan.wallet_moves == {W: (D("100"), D("0"))}
    assert plan.lot_moves == {}


def test_a_credit_repays_a_debt_from_the_oldest_expiry_then_the_new_lot() -> None:
    # given a wallet owing 30 with 10 in a lot expiring in 5 days
    plan = planner.plan_credit(
        wallet("-20", debt="30"),
        COUNTER,
        entry("100"),
        available_at=PINNED,
        expires_at=day(366),
        precision=2,
        lots=[lot(1, "10", 5)],
        at=PINNED,
    )
    # then the old lot repays 10 and the new one 20
    assert plan.postings == [
        Posting(W, D("100"), new_ref(0)),
        Posting(COUNTER, D("-100"), None),
        Posting(W, D("-10"), 1),
        Posting(W, D("-20"), new_ref(0)),
        Posting(W, D("30"), None),
    ]
    assert plan.new_lots == [NewLot(W, D("100"), D("80"), PINNED, day(366))]
    assert plan.lot_moves == {1: D("-10")}
    assert plan.wallet_moves == {W: (D("100"), D("-30"))}


def test_a_pending_credit_leaves_a_debt_to_older_lots() -> None:
    plan = planner.plan_credit(
        wallet("0", debt="30"), COUNTER, entry("100"), available_at=day(14), expires_at=None,
        precision=2, lots=[lot(1, "10", 5)], at=PINNED,
    )  # fmt: skip
    assert plan.new_lots == [NewLot(W, D("100"), D("100"), day(14), None)]
    assert plan.wallet_moves == {W: (D("100"), D("-10"))}


def test_a_credit_past_what_a_wallet_holds_is_refused() -> None:
    with pytest.raises(Problem) as caught:
        planner.plan_credit(
            wallet(str(MAX_AMOUNT - D("10"))), COUNTER, entry("10"), available_at=PINNED,
            expires_at=None, precision=2,
        )  # fmt: skip
    assert (caught.value.code, caught.value.extra) == ("balance_limit_exceeded", {"room": "9.99"})


def test_reversing_a_credit_takes_its_own_lot_first_then_owes_the_rest() -> None:
    # given a credit of 100 whose lot has 40 left, and another lot of 30
    made = lot(5, "40", 300, available=1)  # still pending: it is taken all the same
    plan = planner.plan_reverse_credit(
        wallet("70"), COUNTER, entry("100"), made=made, lots=[lot(2, "30", 10)], at=PINNED
    )
    assert plan.postings == [
        Posting(W, D("-40"), 5),
        Posting(W, D("-30"), 2),
        Posting(W, D("-30"), None),
        Posting(COUNTER, D("100"), None),
    ]
    assert plan.wallet_moves == {W: (D("-100"), D("30"))}


def test_reversing_a_debit_gives_back_the_last_drawn_lot_first() -> None:
    # given a debit that drew 10 from lot 1, then 20 from lot 2 (now empty)
    drawn = [(lot(1, "0", 10), D("-10")), (lot(2, "0", 20), D("-20"))]
    # when 25 of it is reversed, 3 of lot 2 given back already
    plan = planner.plan_reverse_debit(
        wallet("0"), COUNTER, entry("25"), drawn=drawn, done={2: D("3")}, lots=[], at=PINNED
    )
    assert plan.postings == [
        Posting(W, D("17"), 2),
        Posting(W, D("8"), 1),
        Posting(COUNTER, D("-25"), None),
    ]
    assert plan.lot_moves == {2: D("17"), 1: D("8")}


def test_reversing_a_debit_repays_a_debt_from_what_it_gives_back() -> None:
    drawn = [(lot(1, "0", 10), D("-10"))]
    plan = planner.plan_reverse_debit(
        wallet("-4", debt="4"), COUNTER, entry("10"), drawn=drawn, done={}, lots=[], at=PINNED
    )
    assert plan.postings == [
        Posting(W, D("10"), 1),
        Posting(COUNTER, D("-10"), None),
        Posting(W, D("-4"), 1),
        Posting(W, D("4"), None),
    ]
    assert plan.lot_moves == {1: D("6")}


def test_a_transfer_keeps_each_lots_expiry() -> None:
    source = wallet("30")
    target = wallet("0", id_=W2)
    plan = planner.plan_transfer(
        source,
        target,
        entry("25"),
        source_lots=[lot(2, "20", 40), lot(1, "10", 10)],
        target_lots=[],
        precision=2,
        at=PINNED,
    )
    assert plan.new_lots == [
        NewLot(W2, D("10"), D("10"), PINNED, day(10)),
        NewLot(W2, D("15"), D("15"), PINNED, day(40)),
    ]
    assert plan.postings == [
        Posting(W, D("-10"), 1),
        Posting(W2, D("10"), new_ref(0)),
        Posting(W, D("-15"), 2),
        Posting(W2, D("15"), new_ref(1)),
    ]
    assert plan.wallet_moves == {W: (D("-25"), D("0")), W2: (D("25"), D("0"))}


def test_insufficient_is_the_one_rule_a_receipt_reports_too() -> None:
    problem = planner.insufficient(
        D("4.5"), D("5"), currency="BONUS", precision=1, field_name="redeem.amount"
    )
    assert problem is not None
    assert (problem.detail, problem.extra) == (
        "4.5 BONUS available, 5.0 asked",
        {"available": "4.5"},
    )
    assert [e["field"] for e in problem.errors] == ["redeem.amount"]
    assert planner.insufficient(D("5"), D("5"), currency="BONUS", precision=1) is None


# ---------------------------------------------------------------------------- properties

amounts = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)
lot_specs = st.lists(
    st.tuples(
        amounts,
        st.integers(min_value=-30, max_value=0),  # available, days from now
        st.one_of(st.none(), st.integers(min_value=1, max_value=60)),  # expires
    ),
    max_size=8,
)


@st.composite
def open_lots(draw: st.DrawFn) -> list[OpenLot]:
    specs = draw(lot_specs)
    ids = draw(st.permutations(range(1, len(specs) + 1)))
    return [
        OpenLot(i, r, day(a), None if e is None else day(e))
        for i, (r, a, e) in zip(ids, specs, strict=True)
    ]


def order_key(x: OpenLot) -> tuple[bool, dt.datetime, dt.datetime, int]:
    """The spending order, restated: expiry (never last), availability, id."""
    return (x.expires_at is None, x.expires_at or day(10_000), x.available_at, x.id)


@given(open_lots(), amounts)
def test_spending_takes_a_prefix_of_the_oldest_expiry_order(lots: list[OpenLot], amount: D) -> None:
    takes, left = planner.spend(amount, lots)
    by_id = {x.id: x for x in lots}
    # never more than a lot holds, and what is taken plus what is lacking is the amount
    assert all(D("0") < t <= by_id[i].remaining for i, t in takes)
    assert sum((t for _, t in takes), D("0")) + left == amount
    assert left == max(amount - sum((x.remaining for x in lots), D("0")), D("0"))
    # the lots taken are the first ones in expiry order, all but the last emptied
    expected = [x.id for x in sorted(lots, key=order_key)][: len(takes)]
    assert [i for i, _ in takes] == expected
    assert all(t == by_id[i].remaining for i, t in takes[:-1])


@given(open_lots(), amounts, st.decimals(min_value=D("0"), max_value=D("50"), places=2))
def test_a_debit_is_refused_exactly_when_available_is_less(
    lots: list[OpenLot], amount: D, debt: D
) -> None:
    total = sum((x.remaining for x in lots), D("0"))
    w = wallet(str(total - debt), debt=str(debt))
    available = total - debt
    try:
        plan = planner.plan_debit(w, lots, COUNTER, entry(str(amount)), precision=2, at=PINNED)
    except Problem as p:
        assert p.code == "insufficient_balance"
        assert available < amount
        return
    assert available >= amount
    # the postings balance; the wallet loses the amount and its debt
    assert sum((p.amount for p in plan.postings), D("0")) == 0
    assert plan.wallet_moves[W] == (-amount, -debt)
    # the lots lose exactly what the wallet paid with, none below zero
    by_id = {x.id: x for x in lots}
    assert all(by_id[i].remaining + d >= 0 for i, d in plan.lot_moves.items())
    assert -sum(plan.lot_moves.values(), D("0")) == amount + debt


@given(open_lots(), amounts)
def test_a_transfer_conserves_points_and_expiries(lots: list[OpenLot], amount: D) -> None:
    total = sum((x.remaining for x in lots), D("0"))
    if amount > total:
        return
    plan = planner.plan_transfer(
        wallet(str(total)),
        wallet("0", id_=W2),
        entry(str(amount)),
        source_lots=lots,
        target_lots=[],
        precision=2,
        at=PINNED,
    )
    by_id = {x.id: x for x in lots}
    assert sum((n.amount for n in plan.new_lots), D("0")) == amount
    assert -sum(plan.lot_moves.values(), D("0")) == amount
    taken = [p for p in plan.postings if p.account == W]
    made = [p for p in plan.postings if p.account == W2]
    assert len(taken) == len(made) == len(plan.new_lots)
    for t, n in zip(taken, plan.new_lots, strict=True):
        assert t.lot is not None
        assert (n.amount, n.expires_at) == (-t.amount, by_id[t.lot].expires_at)


def test_after_gives_the_next_entry_what_the_last_one_left() -> None:
    # given a wallet owing 5, with 30 in a lot, debited 10 (the debt repaid first)
    w, lots = wallet("25", debt="5"), [lot(1, "30", 10)]
    debit = planner.plan_debit(w, lots, COUNTER, entry("10"), precision=2, at=PINNED)
    # when the receipt's earning is planned on what the debit left
    w2, lots2 = planner.after(w, lots, debit)
    credit = planner.plan_credit(
        w2, COUNTER, entry("7"), available_at=PINNED, expires_at=None, precision=2,
        lots=lots2, at=PINNED,
    )  # fmt: skip
    # then the debt is gone and the earning repays nothing
    assert (w2.balance, w2.debt, lots2) == (D("15"), D("0"), [lot(1, "15", 10)])
    assert credit.postings == [Posting(W, D("7"), new_ref(0)), Posting(COUNTER, D("-7"), None)]
