"""The seam for purchases: evaluate → consume → release, every reason code and limit."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.core.errors import Problem
from kopilka.coupons import queries, redeem
from kopilka.coupons.models import Coupon, CouponMemberUses
from kopilka.rules.engine import ReceiptContext
from tests.coupons.conftest import (
    CHEESE,
    COFFEE,
    MILK,
    NOW,
    AddCode,
    MakeMember,
    MakePool,
    receipt,
)


def ev(
    db: Database,
    codes: list[str],
    ctx: ReceiptContext | None = None,
    member: uuid.UUID | None = None,
    at: dt.datetime = NOW,
    after: list[D] | None = None,
    caller: str | None = None,
) -> redeem.CouponOutcome:
    ctx = ctx or receipt(member=member)
    with db.session() as s:
        return redeem.evaluate(s, codes, ctx, member, at, after, caller=caller)


def use(
    db: Database, codes: list[str], member: uuid.UUID | None = None, ctx: Any = None
) -> tuple[redeem.CouponOutcome, uuid.UUID]:
    """Evaluate and consume in one transaction, as a purchase confirmation does."""
    pid = uuid.uuid4()
    with db.session() as s:
        out = redeem.evaluate(s, codes, ctx or receipt(member=member), member, NOW)
        redeem.consume(s, out, pid, member, NOW)
        s.commit()
    return out, pid


def reasons(out: redeem.CouponOutcome) -> list[str | None]:
    return [r.reason for r in out.results]


def uses(db: Database, code: str) -> int:
    with db.session() as s:
        return s.execute(select(Coupon.uses).where(Coupon.code == code)).scalar_one()


# ---------------------------------------------------------------------------- applied


def test_percent_discount_split_over_lines(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given a 10 % coupon and the worked receipt (milk 179.80, coffee 450.00)
    code = add_code(make_pool(), "SPRING-7KQ2-M4XT")
    # when it is evaluated
    out = ev(program, [code])
    # then 62.98 comes off, split in proportion to the lines
    assert out.as_json() == [{"code": "SPRING-7KQ2-M4XT", "status": "applied", "reason": None}]
    assert out.line_discounts == [D("17.98"), D("45.00")]
    assert out.earn == {} and out.multipliers == {} and out.free_lines == []


def test_codes_are_normalised_on_input(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given a code, typed in lower case with spaces, and with Cyrillic look-alikes (С, К, М)
    code = add_code(make_pool(), "SPRING-7KQ2-M4XC")
    # when evaluated
    out = ev(program, ["  spring 7kq2-m4xс ", "SPRING7КQ2М4XC"])
    # then the first is found and answered in its canonical form; the second is the same
    # code again on one receipt
    assert out.as_json() == [
        {"code": code, "status": "applied", "reason": None},
        {"code": code, "status": "rejected", "reason": "coupon_not_combinable"},
    ]


def test_percent_discount_respects_max_discount(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    pool = make_pool(reward={"kind": "percent", "value": "50", "max_discount": "100.00"})
    out = ev(program, [add_code(pool)])
    assert out.line_discounts == [D("28.55"), D("71.45")]
    assert sum(out.line_discounts) == D("100.00")


def test_fixed_discount_on_matching_lines_only(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given 300.00 off dairy, and a receipt with milk, coffee and cheese
    pool = make_pool(reward={"kind": "fixed", "value": "300.00", "categories": ["dairy"]})
    out = ev(program, [add_code(pool)], receipt(MILK, COFFEE, CHEESE))
    # then only the dairy lines are discounted, in proportion (179.80 : 599.97)
    assert out.line_discounts == [D("69.17"), D("0"), D("230.83")]


def test_fixed_discount_never_exceeds_what_the_rules_left(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given the rules already took 170.00 off milk and 400.00 off coffee
    pool = make_pool(reward={"kind": "fixed", "value": "1000.00"})
    after = [D("9.80"), D("50.00")]
    out = ev(program, [add_code(pool)], after=after)
    # then the coupon takes at most what is left on each line
    assert out.line_discounts == after


def test_points_reward_split_by_line_and_multiplier(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    member = make_member()
    points = make_pool(
        reward={"kind": "points", "value": "100", "currency": "BONUS"}, stackable=True
    )
    double = make_pool(
        reward={"kind": "multiplier", "value": "2", "currency": "BONUS"}, stackable=True
    )
    out = ev(program, [add_code(points), add_code(double)], member=member)
    assert reasons(out) == [None, None]
    assert out.earn == {"BONUS": [D("28.55"), D("71.45")]}
    assert out.multipliers == {"BONUS": D("2")}
    assert out.line_discounts == [D("0"), D("0")]


def test_free_product(program: Database, make_pool: MakePool, add_code: AddCode) -> None:
    # given "one milk free" and a receipt with two milks
    pool = make_pool(reward={"kind": "free_product", "free_sku": "MILK-1L"})
    out = ev(program, [add_code(pool)])
    # then one unit's price comes off the milk line, which is reported as a free line
    assert out.line_discounts == [D("89.90"), D("0")]
    assert out.free_lines == [0]


def test_stackable_coupons_apply_one_after_the_other(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given a fixed 100.00 and a 10 % coupon, both stackable
    fixed = add_code(make_pool(reward={"kind": "fixed", "value": "100.00"}, stackable=True))
    pct = add_code(make_pool(stackable=True))
    out = ev(program, [fixed, pct])
    # then the percent is taken of what the fixed discount left (629.80 − 100.00)
    assert reasons(out) == [None, None]
    assert out.results[0].discount == D("100.00")
    assert out.results[1].discount == D("52.98")
    assert sum(out.line_discounts) == D("152.98")


# ---------------------------------------------------------------------------- reasons


def test_unknown_and_malformed_codes_are_invalid(program: Database) -> None:
    out = ev(program, ["NOPE-2222-3333", " !! ", "ab"])
    assert out.as_json() == [
        {"code": "NOPE-2222-3333", "status": "rejected", "reason": "coupon_invalid"},
        {"code": "!!", "status": "rejected", "reason": "coupon_invalid"},
        {"code": "ab", "status": "rejected", "reason": "coupon_invalid"},
    ]
    assert out.failures == 3
    assert out.line_discounts == [D("0"), D("0")]


def test_not_started_and_expired(program: Database, make_pool: MakePool, add_code: AddCode) -> None:
    later = add_code(make_pool(valid_from="2026-11-22T08:00:00Z"))
    over = add_code(make_pool(valid_until="2026-11-22T07:00:00Z"))
    window = add_code(
        make_pool(valid_from="2026-11-22T07:00:00Z", valid_until="2026-11-22T07:00:01Z")
    )
    out = ev(program, [later, over, window])
    assert reasons(out) == ["coupon_not_started", "coupon_expired", None]
    # the window is judged at ``at``, not at the receipt's time
    assert reasons(ev(program, [later], at=NOW + dt.timedelta(hours=1))) == [None]


def test_single_use_code_is_used_once(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    code = add_code(make_pool(uses_per_code=1))
    first, _ = use(program, [code])
    assert reasons(first) == [None]
    assert uses(program, code) == 1
    assert reasons(ev(program, [code])) == ["coupon_used"]


def test_consume_refuses_a_code_taken_meanwhile(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    # given two tills that both saw the single-use code as applicable
    code = add_code(make_pool(uses_per_code=1))
    seen_by_a = ev(program, [code])
    seen_by_b = ev(program, [code])
    with program.session() as s:
        redeem.consume(s, seen_by_a, uuid.uuid4(), None, NOW)
        s.commit()
    # when the second consumes
    with program.session() as s, pytest.raises(Problem) as exc:
        redeem.consume(s, seen_by_b, uuid.uuid4(), None, NOW)
    # then it is refused, naming the code's position
    assert exc.value.status == 409
    assert exc.value.code == "coupon_used"
    assert exc.value.errors == [
        {"field": "coupons[0]", "code": "coupon_used", "message": "no use left"}
    ]
    assert uses(program, code) == 1


def test_multi_use_code_with_a_global_limit(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    code = add_code(make_pool(uses_per_code=2), "AUTUMN25")
    stale = ev(program, [code])
    use(program, [code])
    use(program, [code])
    assert uses(program, code) == 2
    assert reasons(ev(program, [code])) == ["coupon_limit_reached"]
    with program.session() as s, pytest.raises(Problem) as exc:
        redeem.consume(s, stale, uuid.uuid4(), None, NOW)
    assert (exc.value.status, exc.value.code) == (409, "coupon_limit_reached")


def test_unlimited_code(program: Database, make_pool: MakePool, add_code: AddCode) -> None:
    code = add_code(make_pool(uses_per_code=None), "FOREVER")
    for _ in range(3):
        use(program, [code])
    assert uses(program, code) == 3
    assert reasons(ev(program, [code])) == [None]


def test_per_member_limit_across_the_pool(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    # given a pool of flyer codes, one per member
    pool = make_pool(uses_per_member=1)
    a, b, c = add_code(pool), add_code(pool), add_code(pool)
    alice, bob = make_member(), make_member()
    use(program, [a], member=alice)
    # then alice cannot use a second flyer, bob can; an anonymous receipt cannot at all
    assert reasons(ev(program, [b], member=alice)) == ["coupon_limit_reached"]
    assert reasons(ev(program, [b], member=bob)) == [None]
    assert reasons(ev(program, [c])) == ["coupon_not_applicable"]


def test_per_member_limit_is_enforced_by_consume(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    pool = make_pool(uses_per_member=1)
    a, b = add_code(pool), add_code(pool)
    alice = make_member()
    stale = ev(program, [b], member=alice)
    use(program, [a], member=alice)
    with program.session() as s, pytest.raises(Problem) as exc:
        redeem.consume(s, stale, uuid.uuid4(), alice, NOW)
    assert (exc.value.status, exc.value.code) == (409, "coupon_limit_reached")
    assert uses(program, b) == 0


def test_personal_codes(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    alice, bob = make_member(), make_member()
    code = add_code(make_pool(), member=alice)
    assert reasons(ev(program, [code], member=alice)) == [None]
    # another member: exactly as for an unknown code, echoed as sent
    typed = code.lower()
    assert ev(program, [typed], member=bob).as_json() == [
        {"code": typed, "status": "rejected", "reason": "coupon_invalid"}
    ]
    # no member on the receipt: the same answer as for an unknown code (regression: it was
    # coupon_not_yours with the stored spelling, telling an anonymous till the code exists)
    assert ev(program, [typed]).as_json() == [
        {"code": typed, "status": "rejected", "reason": "coupon_invalid"}
    ]


@pytest.mark.parametrize(
    ("fields", "ctx_kw", "expected"),
    [
        ({"stores": ["msk-02"]}, {}, "coupon_not_applicable"),
        ({"stores": ["msk-02", "msk-01"]}, {}, None),
        ({"channels": ["online"]}, {}, "coupon_not_applicable"),
        ({"channels": ["online"]}, {"channel": "online"}, None),
        ({"min_receipt": "629.81"}, {}, "coupon_not_applicable"),
        ({"min_receipt": "629.80"}, {}, None),
        (
            {"reward": {"kind": "percent", "value": "5", "skus": ["TEA"]}},
            {},
            "coupon_not_applicable",
        ),
        ({"reward": {"kind": "free_product", "free_sku": "TEA"}}, {}, "coupon_not_applicable"),
        (
            {"reward": {"kind": "points", "value": "10", "currency": "BONUS"}},
            {},
            "coupon_not_applicable",
        ),
        ({"status": "paused"}, {}, "coupon_not_applicable"),
    ],
)
def test_conditions(
    program: Database,
    make_pool: MakePool,
    add_code: AddCode,
    fields: dict[str, Any],
    ctx_kw: dict[str, Any],
    expected: str | None,
) -> None:
    code = add_code(make_pool(**fields))
    out = ev(program, [code], receipt(MILK, COFFEE, **ctx_kw))
    assert reasons(out) == [expected]
    if expected is not None:
        assert out.line_discounts == [D("0"), D("0")] and out.earn == {}


def test_min_receipt_counts_what_the_rules_left(
    program: Database, make_pool: MakePool, add_code: AddCode
) -> None:
    code = add_code(make_pool(min_receipt="500.00"))
    assert reasons(ev(program, [code], after=[D("179.80"), D("320.19")])) == [
        "coupon_not_applicable"
    ]
    assert reasons(ev(program, [code], after=[D("179.80"), D("320.20")])) == [None]


def test_not_combinable(program: Database, make_pool: MakePool, add_code: AddCode) -> None:
    solo_a = add_code(make_pool())
    solo_b = add_code(make_pool())
    stack = make_pool(stackable=True)
    s1, s2 = add_code(stack), add_code(stack)
    other = add_code(make_pool(stackable=True))
    # a non-stackable code takes the receipt alone
    assert reasons(ev(program, [solo_a, solo_b])) == [None, "coupon_not_combinable"]
    assert reasons(ev(program, [solo_a, s1])) == [None, "coupon_not_combinable"]
    assert reasons(ev(program, [s1, solo_a])) == [None, "coupon_not_combinable"]
    # stackable codes of different pools go together; two of one pool do not
    assert reasons(ev(program, [s1, other])) == [None, None]
    assert reasons(ev(program, [s1, s2])) == [None, "coupon_not_combinable"]
    # a rejected code does not block the next one
    assert reasons(ev(program, ["NOPE-NOPE", solo_a])) == ["coupon_invalid", None]


def test_release_gives_the_uses_back(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    pool = make_pool(uses_per_member=1)
    code = add_code(pool)
    alice = make_member()
    _, pid = use(program, [code], member=alice)
    assert reasons(ev(program, [code], member=alice)) == ["coupon_used"]
    with program.session() as s:
        assert redeem.release(s, pid, NOW) == 1
        s.commit()
    with program.session() as s:
        assert redeem.release(s, pid, NOW) == 0  # idempotent
        s.commit()
        counter = s.execute(
            select(CouponMemberUses.uses).where(CouponMemberUses.member_id == alice)
        ).scalar_one()
    assert counter == 0
    assert uses(program, code) == 0
    assert reasons(ev(program, [code], member=alice)) == [None]
    # the history keeps the use, marked as given back
    with program.session() as s:
        found = queries.find_code(s, code)
        assert found is not None
        history = queries.code_json(s, found[0], found[1], NOW)["history"]
    assert [(h["purchase_id"], h["released_at"] is not None) for h in history] == [(str(pid), True)]


def test_consume_records_each_use(
    program: Database, make_pool: MakePool, add_code: AddCode, make_member: MakeMember
) -> None:
    alice = make_member()
    code = add_code(make_pool(uses_per_code=None))
    _, pid = use(program, [code], member=alice)
    with program.session() as s:
        found = queries.find_code(s, code)
        assert found is not None
        data = queries.code_json(s, found[0], found[1], NOW)
    assert data["uses"] == 1
    assert data["status"] == "available"
    assert data["history"][0]["purchase_id"] == str(pid)
    assert data["history"][0]["member_id"] == str(alice)
    assert data["history"][0]["discount"] == "62.98"


def test_evaluate_with_no_codes_reads_nothing(program: Database) -> None:
    out = ev(program, [], caller="api_key:x")
    assert out.results == [] and out.line_discounts == [D("0"), D("0")]
