"""The demo's referrals: friends of demo members in every state of the lifecycle, made
through the services a till and the worker use, with the ledger still whole."""

from __future__ import annotations

from kopilka.core.db import Database
from kopilka.demo.seed import demo_program_text, seed_members, seed_referrals
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, invalidate_cache, parse_program


def test_the_demo_has_referrals_in_every_state(db: Database) -> None:
    # given the demo programme and its members
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    invalidate_cache()
    seed_members(60)
    # when the demo's friends enrol and buy
    counts = seed_referrals()
    # then every status is there, and a friend waits for a review
    assert set(counts) == {
        "joined",
        "qualified",
        "rewarded",
        "reversed",
        "rejected",
        "in review",
    }, counts
    assert sum(n for s, n in counts.items() if s != "in review") == 40
    with db.session() as s:
        assert verify(s, stop_at_first=False) == []
