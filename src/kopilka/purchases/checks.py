"""Invariants of purchases, run by ``kopilka ledger verify`` (contract invariants 5 and 6)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from kopilka.ledger.verify import SAMPLE, Breach

CHECKS: list[tuple[str, str, str]] = [
    (
        "purchase_lines_add_up",
        "a purchase's lines do not add up to its totals (purchase id)",
        "SELECT p.id FROM purchases p JOIN (SELECT purchase_id, SUM(amount) AS a, "
        "SUM(discount) AS d, SUM(total_due) AS t, SUM(redeemed) AS r, "
        "SUM(redeemed_value) AS v FROM purchase_lines GROUP BY purchase_id) l "
        "ON l.purchase_id = p.id WHERE l.a <> p.subtotal OR l.d <> p.discount "
        "OR l.t <> p.total_due OR l.r <> p.redeemed OR l.v <> p.redeemed_value",
    ),
    (
        "purchase_line_arithmetic",
        "a line's total due is not its amount less discount and redeemed value (purchase, line)",
        "SELECT purchase_id, line_no FROM purchase_lines "
        "WHERE total_due <> amount - discount - redeemed_value OR total_due < 0",
    ),
    (
        "earned_matches_ledger",
        "points earned by a confirmed purchase differ from its earn entries (purchase, currency)",
        "SELECT e.purchase_id, e.currency FROM (SELECT purchase_id, currency, SUM(amount) AS s "
        "FROM purchase_line_earnings GROUP BY purchase_id, currency) e "
        "JOIN purchases p ON p.id = e.purchase_id AND p.status IN ('confirmed', 'cancelled') "
        "LEFT JOIN ledger_entries le ON le.purchase_id = e.purchase_id "
        "AND le.kind = 'earn' AND le.currency = e.currency "
        "WHERE le.amount IS NULL OR le.amount <> e.s",
    ),
    (
        "returns_within_purchase",
        "more of a line was returned than bought (purchase, line)",
        "SELECT r.purchase_id, r.line_no FROM (SELECT purchase_id, line_no, SUM(quantity) AS q "
        "FROM purchase_return_lines GROUP BY purchase_id, line_no) r "
        "JOIN purchase_lines l ON l.purchase_id = r.purchase_id AND l.line_no = r.line_no "
        "WHERE r.q > l.quantity",
    ),
    (
        "refunds_within_paid",
        "more money refunded than was paid (purchase)",
        "SELECT p.id FROM purchases p JOIN (SELECT purchase_id, SUM(refund) AS s "
        "FROM purchase_return_lines GROUP BY purchase_id) r ON r.purchase_id = p.id "
        "WHERE r.s > p.total_due",
    ),
]


def purchase_checks(session: Session) -> list[Breach]:
    out = []
    for name, description, sql in CHECKS:
        rows = session.execute(text(sql + f" LIMIT {SAMPLE}")).all()
        if rows:
            out.append(Breach(name, description, [", ".join(map(str, r)) for r in rows]))
    return out
