"""The leaderboards' part in a receipt (the seam ``purchases.hooks``): one column read with
the receipt's context (is the member shown?) and, for a settled receipt, the scores as
rows of the receipt's own plan (written in its statement). A cancel or a return takes
back in ``after_reversed``: it needs the receipt's moment and store, read once there (a
rare path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from kopilka.core.plan import Plan
from kopilka.leaderboards import service
from kopilka.purchases.hooks import Reversed, Settled


class LeaderboardHook:
    name = "leaderboards"

    def columns(self) -> Sequence[ColumnElement[Any]]:
        return [service.visible_column()]

    def settled(self, receipt: Settled, read: Mapping[str, Any], plan: Plan) -> None:
        service.plan_for_receipt(plan, receipt, read)

    def reversed(self, receipt: Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        """Nothing here: ``after_reversed`` reads the receipt's period and store first."""

    def after_settled(self, session: Session, receipt: Settled, read: Mapping[str, Any]) -> None:
        """Nothing: the scores are rows of the receipt's plan."""

    def after_reversed(self, session: Session, receipt: Reversed, read: Mapping[str, Any]) -> None:
        service.take_back(session, receipt)


HOOK = LeaderboardHook()
