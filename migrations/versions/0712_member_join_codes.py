"""member app: the one-time codes that enrol a new member from an invitation

Revision ID: 0712
Revises: 0711
Create Date: 2026-12-07 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0712"
down_revision: str | None = "0711"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = kopilka.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_join_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_join_codes")),
    )
    op.create_index(
        op.f("ix_member_join_codes_expires_at"),
        "member_join_codes",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_member_join_codes_expires_at"), table_name="member_join_codes")
    op.drop_table("member_join_codes")
