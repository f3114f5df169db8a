"""The referrals' part in a receipt (the seam ``purchases.hooks``): one column read with
the receipt's context — the status of the member's referral as a friend — and, only when
it is open (or qualified, for a cancel or a return), the work of ``service.qualify`` or
``service.reverse`` after the receipt's rows are written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.orm import Session

from kopilka.core.plan import Plan
from kopilka.purchases.hooks import Reversed, Settled
from kopilka.referrals import service
from kopilka.referrals.models import Referral

STATUS = "referrals_status"


class ReferralHook:
    name = "referrals"

    def columns(self) -> Sequence[ColumnElement[Any]]:
        # the unique index of friend_id serves it: one index probe per receipt
        return [
            select(Referral.status)
            .where(Referral.friend_id == bindparam("member_id"))
            .scalar_subquery()
            .label(STATUS)
        ]

    def settled(self, receipt: Settled, read: Mapping[str, Any], plan: Plan) -> None:
        """No rows of its own in the receipt's statement: a referral's rewards lock the
        referrer's wallet, so they are made by ``after_settled``."""

    def reversed(self, receipt: Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        """As ``settled``: ``after_reversed`` does the work."""

    def after_settled(self, session: Session, receipt: Settled, read: Mapping[str, Any]) -> None:
        if read.get(STATUS) in service.OPEN:
            service.qualify(session, receipt)

    def after_reversed(self, session: Session, receipt: Reversed, read: Mapping[str, Any]) -> None:
        if read.get(STATUS) == "qualified":
            service.reverse(session, receipt)


HOOK = ReferralHook()
