"""What other domains read of the tiers' tables (the reports' tier movement: the history
of tier changes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Subquery, or_, select

from kopilka.tiers.models import TierChange


def changes_between(start: dt.datetime, end: dt.datetime, tier: str | None = None) -> Subquery:
    """The tier changes whose moment (``at``) is from ``start`` (included) to ``end``
    (excluded), only those from or to ``tier`` when given: ``member_id``, ``at``,
    ``reason``, ``from_tier`` and ``to_tier``."""
    cond: list[Any] = [TierChange.at >= start, TierChange.at < end]
    if tier:
        cond.append(or_(TierChange.from_tier == tier, TierChange.to_tier == tier))
    return (
        select(
            TierChange.member_id.label("member_id"),
            TierChange.at.label("at"),
            TierChange.reason.label("reason"),
            TierChange.from_tier.label("from_tier"),
            TierChange.to_tier.label("to_tier"),
        )
        .where(*cond)
        .subquery()
    )
