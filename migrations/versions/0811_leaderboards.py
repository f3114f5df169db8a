"""leaderboards: members' scores per board, period and store; who opted in to be shown

Revision ID: 0811
Revises: 0712
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db
from kopilka.leaderboards.buckets import BUCKET_SQL, DROP_SQL, TRIGGER_SQL, statements

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
        sa.Column("minus_value", kopilka.core.db.Amount(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("reached_at", When, nullable=False),
        sa.PrimaryKeyConstraint(
            "board", "period", "store", "member_id", name=op.f("pk_leaderboard_scores")
        ),
    )
    op.create_index(
        "ix_leaderboard_scores_rank",
        "leaderboard_scores",
        ["board", "period", "store", "minus_value", "reached_at", "member_id"],
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
    op.create_table(
        "leaderboard_buckets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("board", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_buckets")),
    )
    op.create_index(
        "ix_leaderboard_buckets_board",
        "leaderboard_buckets",
        ["board", "period", "store", "bucket"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        # the members shown counted per bucket of values as scores change (a trigger:
        # kopilka.leaderboards.buckets), so that a rank costs no count of everyone ahead
        for statement in statements(BUCKET_SQL) + statements(TRIGGER_SQL):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in statements(DROP_SQL):
            op.execute(statement)
    op.drop_index("ix_leaderboard_buckets_board", table_name="leaderboard_buckets")
    op.drop_table("leaderboard_buckets")
    op.drop_table("leaderboard_players")
    op.drop_index("ix_leaderboard_scores_member", table_name="leaderboard_scores")
    op.drop_index("ix_leaderboard_scores_rank", table_name="leaderboard_scores")
    op.drop_table("leaderboard_scores")
