"""rules engine: rule versions, per-member usage, campaign spend, rules per purchase;
member tags and personal discount

Revision ID: 0701
Revises: 0101
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0701"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("key", "version", name=op.f("pk_rule_versions")),
    )
    op.create_table(
        "rule_usage",
        sa.Column("rule_key", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_rule_usage_member_id_members")
        ),
        sa.PrimaryKeyConstraint(
            "rule_key", "member_id", "period_start", name=op.f("pk_rule_usage")
        ),
    )
    op.create_table(
        "campaign_spend",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("spent", kopilka.core.db.Amount(), nullable=False),
        sa.Column("updated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_campaign_spend")),
    )
    op.create_table(
        "purchase_rules",
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("rule_key", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("effect", sa.String(length=16), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_purchase_rules_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_purchase_rules_purchase_id_purchases")
        ),
        sa.PrimaryKeyConstraint("purchase_id", "rule_key", "unit", name=op.f("pk_purchase_rules")),
    )
    op.create_index(
        "ix_purchase_rules_campaign", "purchase_rules", ["campaign", "purchase_id"], unique=False
    )
    op.add_column("members", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column(
        "members", sa.Column("personal_discount", kopilka.core.db.Amount(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("personal_discount")
        batch.drop_column("tags")
    op.drop_index("ix_purchase_rules_campaign", table_name="purchase_rules")
    op.drop_table("purchase_rules")
    op.drop_table("campaign_spend")
    op.drop_table("rule_usage")
    op.drop_table("rule_versions")
