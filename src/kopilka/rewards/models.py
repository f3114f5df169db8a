"""The rewards' tables: how many units of each reward were taken (the stock counter, moved
by conditional updates only), and each claim of a reward (at the till or in the app)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now, uuid_pk

# held: reserved by a held receipt; claimed: the member has it; returned: the reward line
# was returned or the receipt cancelled (stickers and stock given back); released: the
# hold was released or expired (the same)
STATUSES = ("held", "claimed", "returned", "released")
CHANNELS = ("till", "app")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class RewardStock(Base):
    """Units of a reward taken so far (claims standing, held or claimed). The limit is the
    programme's ``stock``; ``taken`` moves only by ``UPDATE … SET taken = taken + n WHERE
    taken + n <= stock`` (never read-then-written), so a reward is never oversold."""

    __tablename__ = "reward_stock"
    __table_args__ = (CheckConstraint("taken >= 0", name="taken_nonneg"),)

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class RewardClaim(Base):
    """A member's claim of ``units`` of a reward: its cost debited (ledger entry ``key``,
    kind ``reward``), stock taken; at the till a receipt line (``purchase_id``,
    ``line_no``), in the app a coupon code."""

    __tablename__ = "reward_claims"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
        CheckConstraint("units > 0", name="units_pos"),
        CheckConstraint("returned_units >= 0 AND returned_units <= units", name="returned_range"),
        Index("ix_reward_claims_member", "member_id", "reward"),
        Index("ix_reward_claims_reward", "reward", "created_at"),
        Index("ix_reward_claims_purchase", "purchase_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # unique: the ledger entry's key too (a claim made twice is made once)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    reward: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer, default=1)
    returned_units: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(16))
    cost: Mapped[Decimal] = mapped_column(Amount)  # all units together
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    purchase_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    line_no: Mapped[int | None] = mapped_column(Integer)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
