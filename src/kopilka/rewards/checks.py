"""Invariants of the rewards, run by ``kopilka ledger verify``: each reward's stock counter
is the units its standing claims hold, and each claim's cost is its ledger entry."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from kopilka.ledger.verify import SAMPLE, Breach

CHECKS: list[tuple[str, str, str]] = [
    (
        "reward_stock_matches_claims",
        "a reward's units taken differ from its held and claimed units (reward)",
        "SELECT s.code FROM reward_stock s LEFT JOIN (SELECT reward, "
        "SUM(units - returned_units) AS u FROM reward_claims "
        "WHERE status IN ('held', 'claimed') GROUP BY reward) c ON c.reward = s.code "
        "WHERE s.taken <> COALESCE(c.u, 0)",
    ),
    (
        "reward_claim_matches_ledger",
        "a claim's cost is not its ledger entry (claim id)",
        "SELECT c.id FROM reward_claims c LEFT JOIN ledger_entries e ON e.id = c.entry_id "
        "WHERE e.id IS NULL OR e.kind <> 'reward' OR e.key <> c.key OR e.amount <> c.cost "
        "OR e.currency <> c.currency OR e.member_id <> c.member_id",
    ),
]


def reward_checks(session: Session) -> list[Breach]:
    out = []
    for name, description, sql in CHECKS:
        rows = session.execute(text(sql + f" LIMIT {SAMPLE}")).all()
        if rows:
            out.append(Breach(name, description, [", ".join(map(str, r)) for r in rows]))
    return out
