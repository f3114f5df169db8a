"""The demo records custom events through the service, under the demo programme's rules."""

from __future__ import annotations

from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.custom_events.models import Activity, ActivityReward
from kopilka.demo.seed import demo_program_text, seed_custom_events, seed_members
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, parse_program


def test_demo_seeds_custom_events(db: Database) -> None:
    # given the demo programme and members
    spec = parse_program(demo_program_text())
    assert [r.name for r in spec.event_rules] == [
        "Eco — clothes recycled",
        "Jar returned",
        "Profile completed",
    ]
    eco = spec.event_rules[0]
    assert eco.reward.points is not None
    assert (str(eco.reward.points.amount), str(eco.reward.points.max)) == ("100", "500")
    assert eco.limits.per_week == 1
    with db.session() as s:
        apply_program(s, spec, actor="test")
        s.commit()
    assert seed_members(30) == 30
    # when the demo records their custom events
    made = seed_custom_events()
    # then they are there with their rewards, and the ledger holds
    with db.session() as s:
        assert made > 0
        assert s.scalar(select(func.count()).select_from(Activity)) == made
        statuses = set(s.scalars(select(ActivityReward.status).distinct()))
        assert "granted" in statuses
        profile = dict(
            s.execute(
                select(ActivityReward.reason, func.count())
                .where(ActivityReward.rule == "Profile completed")
                .group_by(ActivityReward.reason)
            ).all()
        )
        members = s.scalar(select(func.count(func.distinct(Activity.member_id))))
        # every member completed a profile once: granted, unless held out (control group)
        assert set(profile) <= {None, "control_group"}
        assert sum(profile.values()) == members
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.kind == "reward")) > 0
        assert verify(s, stop_at_first=False) == []
