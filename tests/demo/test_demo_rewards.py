"""The demo's stickers and rewards: members who collected enough stickers take rewards of
the catalogue at the till and in the app, and the ledger stays consistent."""

from __future__ import annotations

from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.demo.seed import demo_program_text, seed_history, seed_members, seed_rewards
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, invalidate_cache, parse_program
from kopilka.rewards.models import RewardClaim


def test_demo_members_take_rewards_with_their_stickers(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    invalidate_cache()
    seed_members(40)
    seed_history()
    made = seed_rewards()
    with db.session() as s:
        claims = s.execute(
            select(RewardClaim.channel, func.count()).group_by(RewardClaim.channel)
        ).all()
        assert sum(n for _, n in claims) == made > 0
        assert verify(s, stop_at_first=False) == []
