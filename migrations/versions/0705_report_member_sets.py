"""reports: members numbered, their days in columns; the default view's snapshots go

Revision ID: 0705
Revises: 0704
Create Date: 2026-11-29 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0705"
down_revision: str | None = "0704"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
    # Members rolled up so far are numbered in id order; the rollup numbers the next ones.
    op.execute(
        "UPDATE report_members SET number = r.n FROM (SELECT member_id, "
        "row_number() OVER (ORDER BY member_id) - 1 AS n FROM report_members) r "
        "WHERE r.member_id = report_members.member_id"
    )
    with op.batch_alter_table("report_members", schema=None) as batch_op:
        batch_op.alter_column("number", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_report_members_number"), ["number"])
    op.create_table(
        "report_member_sets",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("members", sa.LargeBinary(), nullable=False),
        sa.Column("revenues", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_member_sets")),
    )
    op.create_table(
        "report_member_index",
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("joined", sa.LargeBinary(), nullable=False),
        sa.Column("buckets", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("chunk", name=op.f("pk_report_member_index")),
    )
    # The member sets replace the snapshots of the default view (every view is fast now).
    op.drop_table("report_snapshots")
    # The next rollup redoes every day of receipts, which fills the new tables; the
    # ledger's watermark stays, so points are not counted twice.
    op.execute("DELETE FROM report_rollup_state WHERE name = 'last_run'")


def downgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("computed_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("milliseconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_report_snapshots")),
    )
    op.drop_table("report_member_index")
    op.drop_table("report_member_sets")
    with op.batch_alter_table("report_members", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_report_members_number"), type_="unique")
        batch_op.drop_column("number")
