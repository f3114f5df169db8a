"""ledger: a partial index of open lots by expiry (``remaining > 0``)

The liability report's exact "now" subtracts the lots that have expired but whose expiry
the job has not written yet; with only the full (expires_at, remaining) index PostgreSQL
read every lot for them (7 million at 10 million receipts, about 1 s). Open lots are the
minority, and the lapsed ones among them a handful.

Revision ID: 0707
Revises: 0002
Create Date: 2026-11-29 21:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0707"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_lots_lapsing",
        "ledger_lots",
        ["expires_at"],
        unique=False,
        sqlite_where=sa.text("remaining > 0"),
        postgresql_where=sa.text("remaining > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_lots_lapsing", table_name="ledger_lots")
