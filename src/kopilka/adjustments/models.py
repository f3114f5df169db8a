"""A balance adjustment above its currency's approval ceiling, kept until a second person
decides: approved (then posted to the ledger, once) or rejected. Nothing moves in the
ledger while it waits."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

PENDING = "pending_approval"
APPROVED = "approved"
REJECTED = "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)


class Adjustment(Base):
    __tablename__ = "adjustments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending_approval','approved','rejected')", name="status_known"
        ),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        # posted exactly when approved: the entry is written in the approving transaction
        CheckConstraint(
            "(status = 'approved') = (entry_id IS NOT NULL)", name="approved_has_entry"
        ),
        CheckConstraint(
            "(status = 'pending_approval') = (decided_by IS NULL)", name="decided_has_decider"
        ),
        Index("ix_adjustments_status", "status", "id"),
        Index("ix_adjustments_member", "member_id", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The ledger key the adjustment is posted with (unique there too): a request sent
    # again finds this row, and an approval sent twice posts once.
    key: Mapped[str] = mapped_column(String(255), unique=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    currency: Mapped[str] = mapped_column(String(16), ForeignKey("currencies.code"))
    amount: Mapped[Decimal] = mapped_column(Amount)  # signed, as asked
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(24), default=PENDING)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))  # why it was rejected
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
