"""What the console's challenge screens show (another part draws them): per challenge, the
members who joined (opt-in) or took part (any progress), who completed it, the completion
rate, and the cost of its rewards (points per currency, and their money at the currency's
``value``; revoked rewards and the control group's cost nothing)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from kopilka.challenges import service
from kopilka.challenges.models import ChallengeEntry, ChallengeJoin, ChallengeReward
from kopilka.core.money import fmt
from kopilka.program.service import current_program

ZERO = Decimal(0)


@dataclass
class ChallengeFigures:
    code: str
    name: dict[str, str]
    joined: int = 0  # opt-ins (an auto challenge: members who took part)
    took_part: int = 0  # members with progress
    completed: int = 0  # members who completed it at least once
    completions: int = 0  # periods completed
    rewards: dict[str, Decimal] = field(default_factory=dict)  # points per currency
    cost: Decimal = ZERO  # money

    @property
    def completion_rate(self) -> Decimal:
        base = self.joined or self.took_part
        return (Decimal(self.completed) / base).quantize(Decimal("0.0001")) if base else ZERO

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "joined": self.joined,
            "took_part": self.took_part,
            "completed": self.completed,
            "completions": self.completions,
            "completion_rate": str(self.completion_rate),
            "rewards": [{"currency": c, "amount": str(a)} for c, a in sorted(self.rewards.items())],
            "cost": fmt(self.cost, 2),
        }


def figures(
    session: Session, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[ChallengeFigures]:
    """Every challenge of the programme, in its order, with its figures over progress
    made (and rewards given) in ``[start, end)`` (None: open)."""
    st = service.setup(session)
    spec = current_program(session).spec
    values = {c.code: c.value for c in spec.currencies}
    out = {c.code: ChallengeFigures(c.code, c.name.model_dump()) for c in st.challenges}

    def window(q: Any, column: Any) -> Any:
        if start is not None:
            q = q.where(column >= start)
        if end is not None:
            q = q.where(column < end)
        return q

    for code, n in session.execute(
        window(
            select(ChallengeJoin.challenge, func.count()).group_by(ChallengeJoin.challenge),
            ChallengeJoin.joined_at,
        )
    ).all():
        if code in out:
            out[code].joined = n
    for code, took, done, periods in session.execute(
        window(
            select(
                ChallengeEntry.challenge,
                func.count(distinct(ChallengeEntry.member_id)),
                func.count(distinct(ChallengeEntry.member_id)).filter(
                    ChallengeEntry.completed_at.is_not(None)
                ),
                func.count().filter(ChallengeEntry.completed_at.is_not(None)),
            )
            .where(ChallengeEntry.value > 0)
            .group_by(ChallengeEntry.challenge),
            ChallengeEntry.created_at,
        )
    ).all():
        if code in out:
            out[code].took_part, out[code].completed, out[code].completions = took, done, periods
    for code, currency, amount in session.execute(
        window(
            select(
                ChallengeReward.challenge,
                ChallengeReward.currency,
                func.sum(ChallengeReward.amount),
            )
            .where(
                ChallengeReward.status.in_(("pending", "standing")),
                ChallengeReward.currency.is_not(None),
            )
            .group_by(ChallengeReward.challenge, ChallengeReward.currency),
            ChallengeReward.created_at,
        )
    ).all():
        if code in out and currency is not None and amount is not None:
            f = out[code]
            f.rewards[currency] = f.rewards.get(currency, ZERO) + amount
            f.cost += amount * values.get(currency, ZERO)
    for f in out.values():
        if not f.joined:
            f.joined = f.took_part
    return list(out.values())
