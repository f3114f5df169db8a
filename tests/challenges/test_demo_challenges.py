"""The demo programme's challenges and badges: the seeded history moves them, so the demo
shows members with progress, completions and badges (and the ledger still holds)."""

from __future__ import annotations

from sqlalchemy import func, select

from kopilka.challenges.models import ChallengeEntry, MemberBadge
from kopilka.core.db import Database
from kopilka.demo.seed import (
    demo_program_text,
    seed_challenge_joins,
    seed_history,
    seed_members,
)
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, parse_program


def test_the_demo_history_moves_challenges_and_awards_badges(db: Database) -> None:
    # given the demo programme and its members
    with db.session() as s:
        spec = parse_program(demo_program_text())
        apply_program(s, spec, actor="test")
        s.commit()
    assert [c.code for c in spec.challenges] == [
        "five-coffees",
        "month-visits",
        "bakery-streak",
        "recycle-twice",
    ]
    seed_members(40)
    # when a third of them opt in, and the history is seeded through the till's path
    assert seed_challenge_joins() > 0
    seed_history()
    # then members made progress, some completed, and badges were awarded
    with db.session() as s:
        by_challenge = dict(
            s.execute(
                select(ChallengeEntry.challenge, func.count())
                .where(ChallengeEntry.value > 0)
                .group_by(ChallengeEntry.challenge)
            ).all()
        )
        completed = s.scalar(select(func.count()).where(ChallengeEntry.completed_at.is_not(None)))
        badges = s.scalar(select(func.count()).select_from(MemberBadge))
        assert {"five-coffees", "month-visits", "bakery-streak"} <= set(by_challenge)
        assert completed is not None and completed > 0
        assert badges is not None and badges > 0
        assert verify(s, stop_at_first=False) == []
