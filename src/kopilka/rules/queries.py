"""What other domains read of the rules' tables (the reports' campaigns: what campaign
rules gave on purchases).

Nothing here imports ``kopilka.purchases``: purchases imports rules, so the caller joins
these rows to the purchases it picks (``purchases.queries``)."""

from __future__ import annotations

from sqlalchemy import Subquery, select

from kopilka.rules.models import PurchaseRule


def campaign_gifts() -> Subquery:
    """What campaigns' rules gave on purchases and still stands (rows released by a
    cancellation or a full return left out): ``purchase_id``, ``member_id`` (None for a
    receipt without a member), ``campaign``, ``effect``, ``unit`` and ``amount``."""
    return (
        select(
            PurchaseRule.purchase_id.label("purchase_id"),
            PurchaseRule.member_id.label("member_id"),
            PurchaseRule.campaign.label("campaign"),
            PurchaseRule.effect.label("effect"),
            PurchaseRule.unit.label("unit"),
            PurchaseRule.amount.label("amount"),
        )
        .where(PurchaseRule.campaign.is_not(None), PurchaseRule.released.is_(False))
        .subquery()
    )
