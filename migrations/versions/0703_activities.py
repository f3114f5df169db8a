"""custom events: activities and the rewards their rules gave

Revision ID: 0703
Revises: 0501
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0703"
down_revision: str | None = "0501"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_activities_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sa.UniqueConstraint("external_id", name=op.f("uq_activities_external_id")),
    )
    op.create_index("ix_activities_member", "activities", ["member_id", "id"], unique=False)
    op.create_index("ix_activities_occurred_at", "activities", ["occurred_at"], unique=False)
    op.create_table(
        "activity_rewards",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("activity_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=True),
        sa.Column("coupon_pool", sa.String(length=200), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('granted','limited','rejected')",
            name=op.f("ck_activity_rewards_status_known"),
        ),
        sa.CheckConstraint(
            "amount IS NULL OR amount > 0", name=op.f("ck_activity_rewards_amount_pos")
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_rewards_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_activity_rewards_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_rewards")),
    )
    op.create_index(
        "ix_activity_rewards_limits",
        "activity_rewards",
        ["member_id", "rule", "status", "occurred_at"],
        unique=False,
    )
    op.create_index(
        "ix_activity_rewards_activity_id", "activity_rewards", ["activity_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_activity_rewards_activity_id", table_name="activity_rewards")
    op.drop_index("ix_activity_rewards_limits", table_name="activity_rewards")
    op.drop_table("activity_rewards")
    op.drop_index("ix_activities_occurred_at", table_name="activities")
    op.drop_index("ix_activities_member", table_name="activities")
    op.drop_table("activities")
