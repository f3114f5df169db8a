"""The ledger's tables: accounts, journal entries, postings and lots.

Append-only: entries and postings are only ever inserted. The columns marked *cache* are
derived from postings (``kopilka ledger verify`` checks that they agree) and are the only
values updated in place, always under the wallet's row lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, BigId, UTCDateTime, now, uuid_pk

# System accounts, one per currency. Member wallets are kind "member".
SYSTEM_KINDS = ("issuance", "redemption", "breakage", "adjustment", "held")
ACCOUNT_KINDS = ("member", *SYSTEM_KINDS)
ENTRY_KINDS = (
    "earn",
    "redeem",
    "hold",
    "release",
    "return",
    "expire",
    "adjust",
    "transfer",
    "reward",
    "reversal",
    "cancel",
    "settle",
)


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("currency", "kind", "member_id"),
        CheckConstraint(
            "(kind = 'member') = (member_id IS NOT NULL)", name="member_wallet_has_member"
        ),
        CheckConstraint("debt >= 0", name="debt_nonneg"),
        # One system account of each kind per currency (the unique constraint above treats
        # NULL member ids as distinct, so this index closes the gap).
        Index(
            "uq_ledger_accounts_system",
            "currency",
            "kind",
            unique=True,
            sqlite_where=text("member_id IS NULL"),
            postgresql_where=text("member_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), ForeignKey("currencies.code"))
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    # cache: the sum of all postings on the account
    balance: Mapped[Decimal] = mapped_column(Amount, default=0)
    # cache: what the member owes (postings without a lot, negated); member wallets only
    debt: Mapped[Decimal] = mapped_column(Amount, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


class Entry(Base):
    """A journal entry: one business event, its postings summing to zero per currency."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_member", "member_id", "occurred_at"),
        Index("ix_ledger_entries_purchase", "purchase_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The client-chosen (or derived) id that makes retries harmless: unique.
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Amount)  # what moved, unsigned
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("members.id"))
    purchase_id: Mapped[uuid.UUID | None] = mapped_column()
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)
    actor: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500), default="")


class Lot(Base):
    """A credit to a wallet, consumed by debits FIFO by expiry."""

    __tablename__ = "ledger_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_nonneg"),
        CheckConstraint("remaining <= amount", name="remaining_le_amount"),
        CheckConstraint("amount > 0", name="amount_pos"),
        Index("ix_ledger_lots_open", "account_id", "remaining", "expires_at"),
        Index("ix_ledger_lots_expiring", "expires_at", "remaining"),
        # open lots by expiry: the lapsed ones (expired, not yet written off by the job)
        # are found without reading the expired and spent ones, which are most lots
        Index(
            "ix_ledger_lots_lapsing",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    amount: Mapped[Decimal] = mapped_column(Amount)
    # cache: the sum of the postings that name this lot
    remaining: Mapped[Decimal] = mapped_column(Amount)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_account", "account_id", "id"),
        Index("ix_ledger_postings_lot", "lot_id"),
        Index("ix_ledger_postings_entry", "entry_id"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_entries.id"))
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Amount)
    lot_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_lots.id"))
