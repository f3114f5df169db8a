"""adjustments: requests above a currency's approval ceiling, waiting for a second person

Revision ID: 0708
Revises: 0707
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0708"
down_revision: str | None = "0707"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adjustments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending_approval','approved','rejected')",
            name=op.f("ck_adjustments_status_known"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_adjustments_amount_nonzero")),
        sa.CheckConstraint(
            "(status = 'approved') = (entry_id IS NOT NULL)",
            name=op.f("ck_adjustments_approved_has_entry"),
        ),
        sa.CheckConstraint(
            "(status = 'pending_approval') = (decided_by IS NULL)",
            name=op.f("ck_adjustments_decided_has_decider"),
        ),
        sa.ForeignKeyConstraint(
            ["currency"], ["currencies.code"], name=op.f("fk_adjustments_currency_currencies")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_adjustments_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_adjustments_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustments")),
        sa.UniqueConstraint("key", name=op.f("uq_adjustments_key")),
    )
    with op.batch_alter_table("adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_adjustments_member", ["member_id", "id"], unique=False)
        batch_op.create_index("ix_adjustments_status", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("adjustments")
