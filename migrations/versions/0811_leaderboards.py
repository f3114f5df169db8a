"""leaderboards: members' scores per board, period and store; who opted in to be shown

Revision ID: 0811
Revises: 0712
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0811"
down_revision: str | None = "0712"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = kopilka.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leaderboard_scores",
        sa.Column("board", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("value", kopilka.core.db.Amount(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("reached_at", When, nullable=False),
        sa.PrimaryKeyConstraint(
            "board", "period", "store", "member_id", name=op.f("pk_leaderboard_scores")
        ),
    )
    op.create_index(
        "ix_leaderboard_scores_rank",
        "leaderboard_scores",
        ["board", "period", "store", "value", "reached_at", "member_id"],
        unique=False,
        postgresql_where=sa.text("visible"),
        sqlite_where=sa.text("visible"),
    )
    op.create_index(
        "ix_leaderboard_scores_member", "leaderboard_scores", ["member_id"], unique=False
    )
    op.create_table(
        "leaderboard_players",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("nickname", sa.String(length=20), nullable=True),
        sa.Column("nickname_key", sa.String(length=20), nullable=True),
        sa.Column("masked_name", sa.String(length=40), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_leaderboard_players")),
        sa.UniqueConstraint("nickname_key", name=op.f("uq_leaderboard_players_nickname_key")),
    )


def downgrade() -> None:
    op.drop_table("leaderboard_players")
    op.drop_index("ix_leaderboard_scores_member", table_name="leaderboard_scores")
    op.drop_index("ix_leaderboard_scores_rank", table_name="leaderboard_scores")
    op.drop_table("leaderboard_scores")
