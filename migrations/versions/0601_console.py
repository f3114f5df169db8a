"""console sessions, TOTP steps and the reports' rollup tables

Revision ID: 0601
Revises: 0001
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0601"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("pending_totp_secret", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "stage IN ('totp','full')", name=op.f("ck_console_sessions_stage_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index(
        "ix_console_sessions_expires_at", "console_sessions", ["expires_at"], unique=False
    )
    op.create_index(
        "ix_console_sessions_user", "console_sessions", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "console_totp_steps",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_totp_steps_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_totp_steps")),
    )
    op.create_table(
        "report_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("joined_day", sa.Date(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_report_members")),
    )
    op.create_index(
        "ix_report_members_joined_day", "report_members", ["joined_day", "bucket"], unique=False
    )
    op.create_table(
        "report_sales_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("carded", sa.Boolean(), nullable=False),
        sa.Column("receipts", sa.Integer(), nullable=False),
        sa.Column("revenue", kopilka.core.db.Amount(), nullable=False),
        sa.Column("subtotal", kopilka.core.db.Amount(), nullable=False),
        sa.Column("discount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("redeemed_value", kopilka.core.db.Amount(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "store", "channel", "tier", "carded", name=op.f("pk_report_sales_daily")
        ),
    )
    op.create_table(
        "report_points_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "currency",
            "flow",
            "store",
            "channel",
            "tier",
            name=op.f("pk_report_points_daily"),
        ),
    )
    op.create_table(
        "report_member_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("receipts", sa.Integer(), nullable=False),
        sa.Column("revenue", kopilka.core.db.Amount(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "member_id", "store", "channel", name=op.f("pk_report_member_days")
        ),
    )
    op.create_table(
        "report_cohorts",
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "month", name=op.f("pk_report_cohorts")),
    )
    op.create_table(
        "report_rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("updated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("report_rollup_state")
    op.drop_table("report_cohorts")
    op.drop_table("report_member_days")
    op.drop_table("report_points_daily")
    op.drop_table("report_sales_daily")
    op.drop_index("ix_report_members_joined_day", table_name="report_members")
    op.drop_table("report_members")
    op.drop_table("console_totp_steps")
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
