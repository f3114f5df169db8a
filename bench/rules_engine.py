"""Benchmark: the rules engine on a 20-line receipt against 100 active rules.

    .venv/bin/python bench/rules_engine.py [--rules 100] [--lines 20] [--n 5000] [--mix heavy]

Pure CPU, no database: it compiles a programme of ``--rules`` active rules of every kind
the language has (category and SKU bonuses, fixed earns per line and per unit, multipliers,
percent and fixed discounts, rewards, tier, birthday, time-of-day and weekday conditions,
a budgeted campaign, per-receipt and per-member caps, exclusive and best-of stacking):
``realistic`` (default) as a chain's programme looks, or ``heavy``, a stress mix where half
of the rules fire on the receipt. Then it
times both phases (``price`` and ``earn``) for a member on a receipt of ``--lines`` lines,
``--n`` times. It prints the median, p99 and mean per receipt, how many rules fired, and
writes the figures as JSON to bench/results/. The acceptance bar is under 1 ms per receipt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from kopilka.core.money import round_half_up
from kopilka.program.service import validate_program
from kopilka.rules import engine

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = [f"cat{i}" for i in range(10)]


def heavy_set(n: int) -> list[dict[str, Any]]:
    """A stress mix: ``n`` rules cycling through the language's kinds, about half of which
    fire on the bench receipt (ten birthday gifts, ten capped receipt discounts, …)."""
    out: list[dict[str, Any]] = [
        {"name": "Base earn", "earn": {"currency": "BONUS", "percent": "3"}}
    ]
    kinds = [
        lambda i: {
            "when": {"lines": {"categories": [CATEGORIES[i % 10]]}},
            "earn": {"currency": "BONUS", "percent": "2"},
        },
        lambda i: {
            "when": {"lines": {"skus": [f"SKU-{i % 40}", f"SKU-{(i * 7) % 40}"]}},
            "earn": {"currency": "BONUS", "amount": "5", "per": "unit"},
        },
        lambda i: {
            "when": {"member": {"tiers": ["gold" if i % 2 else "silver"]}},
            "multiply": {"factor": "1.5"},
        },
        lambda i: {
            "when": {"time": {"days_of_week": ["sat", "sun"]}},
            "campaign": "weekend",
            "multiply": {"factor": "2", "currency": "BONUS"},
        },
        lambda i: {
            "when": {"lines": {"categories": [CATEGORIES[(i + 3) % 10]]}},
            "discount": {"percent": "5"},
            "stacking": "best_of",
            "group": f"g{i % 3}",
        },
        lambda i: {
            "when": {"receipt": {"min_amount": str(500 + i)}},
            "discount": {"amount": "50"},
            "caps": {"per_receipt": "40"},
        },
        lambda i: {
            "when": {"member": {"birthday": {"days_before": 3, "days_after": 3}}},
            "reward": {"currency": "BONUS", "amount": "200"},
        },
        lambda i: {
            "when": {"time": {"hours": {"from": "07:00", "to": "09:00"}}},
            "earn": {"currency": "BONUS", "percent": "10"},
        },
        lambda i: {
            "when": {"lines": {"categories": [CATEGORIES[i % 10]], "min_quantity": "2"}},
            "earn": {"currency": "STAMP", "amount": "1", "per": "line"},
            "caps": {"per_member": {"amount": "10", "period": "month"}},
        },
        lambda i: {
            "when": {"member": {"tags": [f"seg{i % 5}"]}, "receipt": {"channels": ["pos", "app"]}},
            "earn": {"currency": "BONUS", "percent": "1"},
            "priority": i % 7,
        },
    ]
    for i in range(1, n):
        out.append({"name": f"Rule {i}", **kinds[i % len(kinds)](i)})
    return out


def realistic_set(n: int) -> list[dict[str, Any]]:
    """A programme as a large chain runs it: a base rule; a bonus per category; many SKU
    promotions (supplier-funded, few of them on any one receipt); discounts per category in
    best-of groups; tier, segment and channel rules; happy hours and weekday offers, most of
    them off at any given moment; a budgeted weekend campaign; threshold gifts with caps;
    birthday and welcome gifts; exclusions and a redemption cap; capped stamps."""
    rules: list[dict[str, Any]] = [
        {"name": "Base earn", "earn": {"currency": "BONUS", "percent": "3"}},
        {
            "name": "Tobacco",
            "when": {"lines": {"categories": ["tobacco"]}},
            "exclude": {"earning": True, "redemption": True},
        },
        {
            "name": "Alcohol",
            "when": {"lines": {"categories": ["alcohol"]}},
            "exclude": {"redemption": True},
        },
        {
            "name": "Online cap",
            "when": {"receipt": {"channels": ["online"]}},
            "redeem": {"currency": "BONUS", "max_share": "0.3"},
        },
        {
            "name": "Birthday",
            "when": {"member": {"birthday": {"days_before": 3, "days_after": 3}}},
            "reward": {"currency": "BONUS", "amount": "300"},
            "caps": {"per_member": {"amount": "300", "period": "year"}},
        },
        {
            "name": "Welcome",
            "when": {"member": {"first_purchase": True}},
            "reward": {"currency": "BONUS", "amount": "100"},
        },
        {
            "name": "Stamps",
            "when": {"lines": {"categories": ["cat1"]}},
            "earn": {"currency": "STAMP", "amount": "1", "per": "unit"},
            "caps": {"per_member": {"amount": "10", "period": "week"}},
        },
        {
            "name": "Weekend x2",
            "campaign": "weekend",
            "when": {"lines": {"categories": ["cat2", "cat3"]}},
            "multiply": {"factor": "2", "currency": "BONUS"},
        },
        {
            "name": "Gold x1.5",
            "when": {"member": {"tiers": ["gold"]}},
            "multiply": {"factor": "1.5"},
        },
        {
            "name": "Staff",
            "priority": 50,
            "stacking": "exclusive",
            "when": {"member": {"tags": ["staff"]}},
            "discount": {"percent": "15"},
        },
    ]
    for c in range(10):  # a bonus per category
        rules.append(
            {
                "name": f"Category {c}",
                "when": {"lines": {"categories": [CATEGORIES[c]]}},
                "earn": {"currency": "BONUS", "percent": "1"},
            }
        )
    for k in range(40):  # SKU promotions over a catalogue of 400 SKUs
        skus = [f"SKU-{(k * 11 + j) % 400}" for j in range(3)]
        rules.append(
            {
                "name": f"Promo {k}",
                "when": {"lines": {"skus": skus}},
                "earn": {"currency": "BONUS", "amount": "10", "per": "unit"},
            }
        )
    for k in range(12):  # category discounts, best of three per group
        rules.append(
            {
                "name": f"Sale {k}",
                "stacking": "best_of",
                "group": f"sale{k % 4}",
                "when": {"lines": {"categories": [CATEGORIES[k % 10]]}},
                "discount": {"percent": str(5 + k % 3)},
            }
        )
    for k in range(10):  # happy hours and weekday offers
        rules.append(
            {
                "name": f"Hours {k}",
                "when": {
                    "time": {
                        "days_of_week": [["mon", "tue", "wed", "thu", "fri", "sat", "sun"][k % 7]],
                        "hours": {"from": f"{8 + k:02d}:00", "to": f"{9 + k:02d}:00"},
                    }
                },
                "earn": {"currency": "BONUS", "percent": "5"},
            }
        )
    for k in range(8):  # segments and channels
        rules.append(
            {
                "name": f"Segment {k}",
                "when": {
                    "member": {"tags": [f"seg{k}"]},
                    "receipt": {"channels": ["app"] if k % 2 else ["pos"]},
                },
                "earn": {"currency": "BONUS", "percent": "1"},
            }
        )
    for k in range(n - len(rules)):  # receipt thresholds with caps
        rules.append(
            {
                "name": f"Threshold {k}",
                "when": {"receipt": {"min_amount": str(3000 + 500 * k)}},
                "reward": {"currency": "BONUS", "amount": "50"},
                "caps": {"per_member": {"amount": "200", "period": "month"}},
            }
        )
    return rules[:n]


def programme(n: int, mix: str = "realistic") -> engine.CompiledRules:
    doc = {
        "name": "Bench",
        "timezone": "Europe/Moscow",
        "currencies": [
            {"code": "BONUS", "name": "Bonus", "precision": 2},
            {"code": "STAMP", "name": "Stamps", "precision": 0, "value": "0"},
        ],
        "stores": [{"code": "msk-01", "name": "A"}],
        "campaigns": [
            {
                "code": "weekend",
                "name": "Weekend",
                "budget": {"currency": "BONUS", "amount": "1000000"},
            }
        ],
        "rules": realistic_set(n) if mix == "realistic" else heavy_set(n),
    }
    return engine.compile_rules(validate_program(doc))


def receipt(lines: int) -> engine.ReceiptContext:
    ls = []
    for i in range(lines):
        q = Decimal(1 + i % 3) if i % 4 else Decimal("0.734")
        p = Decimal(49) + Decimal(i * 37 % 500) + Decimal("0.90")
        ls.append(
            engine.LineIn(
                i + 1, f"SKU-{i * 3 % 40}", None, CATEGORIES[i % 10], q, p, round_half_up(q * p, 2)
            )
        )
    member = engine.MemberContext(
        id=uuid.uuid4(),
        tier="gold",
        tags=frozenset({"seg1", "seg3"}),
        birth_date=dt.date(1990, 11, 29),
        joined_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        purchases_count=12,
        usage={"rule-9": Decimal(3)},
    )
    return engine.ReceiptContext(
        store="msk-01",
        partner=None,
        channel="pos",
        occurred_at=dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC),  # a Saturday
        timezone="Europe/Moscow",
        lines=tuple(ls),
        member=member,
        campaign_spent={"weekend": Decimal(500)},
    )


def once(
    rules: engine.CompiledRules, ctx: engine.ReceiptContext
) -> tuple[engine.Pricing, engine.Earning]:
    pricing = engine.price(rules, ctx)
    paid = [ln.amount - d for ln, d in zip(ctx.lines, pricing.line_discounts, strict=True)]
    return pricing, engine.earn(rules, ctx, pricing, paid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--mix", choices=["realistic", "heavy"], default="realistic")
    args = ap.parse_args()
    rules = programme(args.rules, args.mix)
    ctx = receipt(args.lines)
    for _ in range(200):  # warm up
        once(rules, ctx)
    times = []
    for _ in range(args.n):
        t = time.perf_counter()
        pricing, earning = once(rules, ctx)
        times.append(time.perf_counter() - t)
    times.sort()
    fired = len(pricing.applied) + len(earning.applied)
    result = {
        "mix": args.mix,
        "rules": len(rules.rules),
        "lines": args.lines,
        "iterations": args.n,
        "fired": fired,
        "median_ms": round(statistics.median(times) * 1000, 4),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 4),
        "mean_ms": round(statistics.fmean(times) * 1000, 4),
        "discount": str(sum(pricing.line_discounts, Decimal(0))),
        "earned": {c: str(sum(v, Decimal(0))) for c, v in earning.earned.items()},
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rules_engine-{int(time.time())}.json").write_text(json.dumps(result, indent=2))
    print(
        f"{result['median_ms']} ms median, {result['p99_ms']} ms p99 per {args.lines}-line receipt "
        f"against {result['rules']} rules, {args.mix} mix ({fired} fired); bar: < 1 ms"
    )


if __name__ == "__main__":
    main()
