"""``kopilka ledger verify``: every ledger invariant of the contract, over the whole database.

Each check is one aggregate query, so the database streams through the tables instead of
Python holding them: it works the same on tens of millions of postings. A check reports at
most ``SAMPLE`` offending rows as examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

SAMPLE = 10


@dataclass
class Breach:
    check: str
    description: str
    examples: list[str] = field(default_factory=list)


def _rows(session: Session, sql: str) -> list[str]:
    return [
        ", ".join(str(v) for v in row)
        for row in session.execute(text(sql + f" LIMIT {SAMPLE}")).all()
    ]


CHECKS: list[tuple[str, str, str]] = [
    (
        "double_entry_per_currency",
        "the postings of a currency do not sum to zero (currency, sum in 1/10000)",
        "SELECT currency, SUM(amount) FROM ledger_postings GROUP BY currency "
        "HAVING SUM(amount) <> 0",
    ),
    (
        "double_entry_per_entry",
        "an entry's postings do not sum to zero (entry id, sum)",
        "SELECT entry_id, SUM(amount) FROM ledger_postings GROUP BY entry_id "
        "HAVING SUM(amount) <> 0",
    ),
    (
        "posting_currency",
        "a posting's currency differs from its account's or its entry's (posting id)",
        "SELECT p.id FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
        "JOIN ledger_entries e ON e.id = p.entry_id "
        "WHERE p.currency <> a.currency OR p.currency <> e.currency",
    ),
    (
        "wallet_balance_cache",
        "a wallet's cached balance differs from the sum of its postings (account, cached, sum)",
        "SELECT a.id, a.balance, COALESCE(s.total, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_postings "
        "GROUP BY account_id) s ON s.account_id = a.id "
        "WHERE a.kind = 'member' AND a.balance <> COALESCE(s.total, 0)",
    ),
    (
        "wallet_debt_cache",
        "a wallet's cached debt differs from its postings without a lot (account, cached, sum)",
        "SELECT a.id, a.debt, COALESCE(s.total, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, -SUM(amount) AS total FROM ledger_postings "
        "WHERE lot_id IS NULL GROUP BY account_id) s ON s.account_id = a.id "
        "WHERE a.kind = 'member' AND a.debt <> COALESCE(s.total, 0)",
    ),
    (
        "lot_remaining_cache",
        "a lot's remaining amount differs from the sum of its postings (lot, cached, sum)",
        "SELECT l.id, l.remaining, COALESCE(s.total, 0) FROM ledger_lots l "
        "LEFT JOIN (SELECT lot_id, SUM(amount) AS total FROM ledger_postings "
        "WHERE lot_id IS NOT NULL GROUP BY lot_id) s ON s.lot_id = l.id "
        "WHERE l.remaining <> COALESCE(s.total, 0)",
    ),
    (
        "lot_bounds",
        "a lot holds less than zero or more than it was credited (lot, amount, remaining)",
        "SELECT id, amount, remaining FROM ledger_lots WHERE remaining < 0 OR remaining > amount",
    ),
    (
        "lot_on_own_wallet",
        "a posting names a lot of another account (posting id)",
        "SELECT p.id FROM ledger_postings p JOIN ledger_lots l ON l.id = p.lot_id "
        "WHERE l.account_id <> p.account_id",
    ),
    (
        "wallet_equals_lots_less_debt",
        "a wallet's balance is not its lots' remaining less its debt (account)",
        "SELECT a.id FROM ledger_accounts a LEFT JOIN (SELECT account_id, SUM(remaining) AS r "
        "FROM ledger_lots GROUP BY account_id) l ON l.account_id = a.id "
        "WHERE a.kind = 'member' AND a.balance <> COALESCE(l.r, 0) - a.debt",
    ),
    (
        "no_negative_debt",
        "a wallet shows a negative debt (account)",
        "SELECT id FROM ledger_accounts WHERE debt < 0",
    ),
]

# Other domains' invariants (purchases, …), registered by ``kopilka.wiring``.
EXTRA_CHECKS: list[Callable[[Session], list[Breach]]] = []


def register_check(check: Callable[[Session], list[Breach]]) -> None:
    """Add another domain's invariants to ``kopilka ledger verify`` (once)."""
    if check not in EXTRA_CHECKS:
        EXTRA_CHECKS.append(check)


def verify(session: Session, stop_at_first: bool = True) -> list[Breach]:
    """Run every check; the breaches found (empty: all invariants hold)."""
    breaches: list[Breach] = []
    for name, description, sql in CHECKS:
        examples = _rows(session, sql)
        if examples:
            breaches.append(Breach(name, description, examples))
            if stop_at_first:
                return breaches
    for extra in EXTRA_CHECKS:
        found = extra(session)
        breaches.extend(found)
        if found and stop_at_first:
            return breaches
    return breaches
