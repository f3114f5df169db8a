"""member tiers: each member's floor and grace period, and the history of tier changes

Revision ID: 0702
Revises: 0101
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0702"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("floor_tier", sa.String(length=32), nullable=True),
        sa.Column("floor_until", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("floor_reason", sa.String(length=500), nullable=True),
        sa.Column("floor_set_by", sa.String(length=200), nullable=True),
        sa.Column("floor_set_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("grace_until", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_tiers_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )
    op.create_index(
        op.f("ix_member_tiers_grace_until"), "member_tiers", ["grace_until"], unique=False
    )
    op.create_table(
        "tier_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("from_tier", sa.String(length=32), nullable=True),
        sa.Column("to_tier", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("qualifying_value", kopilka.core.db.Amount(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('upgrade','downgrade','grace_expired','manual','program_changed')",
            name=op.f("ck_tier_changes_reason_known"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_changes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    op.create_index("ix_tier_changes_member", "tier_changes", ["member_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tier_changes_member", table_name="tier_changes")
    op.drop_table("tier_changes")
    op.drop_index(op.f("ix_member_tiers_grace_until"), table_name="member_tiers")
    op.drop_table("member_tiers")
