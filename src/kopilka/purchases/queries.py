"""What other parts read of the purchases' tables (the console's member page)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.purchases.models import PurchaseReturn


def returns_by_purchase(
    session: Session, purchase_ids: Sequence[uuid.UUID]
) -> dict[str, list[PurchaseReturn]]:
    """The returns of each of these purchases (by the purchase's id as text), oldest first."""
    returns: dict[str, list[PurchaseReturn]] = {}
    if not purchase_ids:
        return returns
    for r in session.execute(
        select(PurchaseReturn)
        .where(PurchaseReturn.purchase_id.in_(list(purchase_ids)))
        .order_by(PurchaseReturn.created_at)
    ).scalars():
        returns.setdefault(str(r.purchase_id), []).append(r)
    return returns
