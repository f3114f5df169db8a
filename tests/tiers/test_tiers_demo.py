"""The demo ends with members spread across its three tiers."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from kopilka.core.db import Database
from kopilka.demo.seed import demo_program_text, seed_history, seed_members
from kopilka.members.models import Member
from kopilka.program.service import apply_program, parse_program
from kopilka.tiers.models import TierChange


def test_the_demo_members_are_spread_across_the_tiers(db: Database) -> None:
    # given the demo programme, 40 members and their receipts
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    seed_members(40)
    seed_history()
    # then every member has a tier and each of the three levels has members
    with db.session() as s:
        tiers = Counter(s.scalars(select(Member.tier)))
        reasons = set(s.scalars(select(TierChange.reason)))
    assert set(tiers) == {"silver", "gold", "platinum"}, tiers
    assert tiers["silver"] > tiers["gold"] > 0 and tiers["platinum"] > 0
    assert reasons == {"upgrade"}
