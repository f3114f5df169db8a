"""rewards: the stock counters and the claims of the rewards catalogue

Revision ID: 0821
Revises: 0712
Create Date: 2026-12-07 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0821"
down_revision: str | None = "0712"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = kopilka.core.db.UTCDateTime(timezone=True)
Amount = kopilka.core.db.Amount()


def upgrade() -> None:
    op.create_table(
        "reward_stock",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.CheckConstraint("taken >= 0", name=op.f("ck_reward_stock_taken_nonneg")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_reward_stock")),
    )
    op.create_table(
        "reward_claims",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("reward", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("returned_units", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("cost", Amount, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.CheckConstraint(
            "status IN ('held', 'claimed', 'returned', 'released')",
            name=op.f("ck_reward_claims_status_known"),
        ),
        sa.CheckConstraint(
            "channel IN ('till', 'app')", name=op.f("ck_reward_claims_channel_known")
        ),
        sa.CheckConstraint("units > 0", name=op.f("ck_reward_claims_units_pos")),
        sa.CheckConstraint(
            "returned_units >= 0 AND returned_units <= units",
            name=op.f("ck_reward_claims_returned_range"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_reward_claims_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reward_claims_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_claims")),
        sa.UniqueConstraint("key", name=op.f("uq_reward_claims_key")),
    )
    op.create_index("ix_reward_claims_member", "reward_claims", ["member_id", "reward"])
    op.create_index("ix_reward_claims_reward", "reward_claims", ["reward", "created_at"])
    op.create_index("ix_reward_claims_purchase", "reward_claims", ["purchase_id"])


def downgrade() -> None:
    op.drop_index("ix_reward_claims_purchase", table_name="reward_claims")
    op.drop_index("ix_reward_claims_reward", table_name="reward_claims")
    op.drop_index("ix_reward_claims_member", table_name="reward_claims")
    op.drop_table("reward_claims")
    op.drop_table("reward_stock")
