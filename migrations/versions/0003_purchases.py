"""purchases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:02:38.492439
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purchases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=False),
        sa.Column("subtotal", kopilka.core.db.Amount(), nullable=False),
        sa.Column("discount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("total_due", kopilka.core.db.Amount(), nullable=False),
        sa.Column("redeem_currency", sa.String(length=16), nullable=True),
        sa.Column("redeemed", kopilka.core.db.Amount(), nullable=False),
        sa.Column("redeemed_value", kopilka.core.db.Amount(), nullable=False),
        sa.Column("hold_expires_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt_number", sa.String(length=100), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "channel IN ('pos','online','app')", name=op.f("ck_purchases_channel_known")
        ),
        sa.CheckConstraint(
            "status IN ('held','confirmed','cancelled','released')",
            name=op.f("ck_purchases_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_purchases_member_id_members")
        ),
        sa.ForeignKeyConstraint(["store"], ["stores.code"], name=op.f("fk_purchases_store_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.UniqueConstraint("store", "external_id", name=op.f("uq_purchases_store_external_id")),
    )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.create_index("ix_purchases_hold", ["status", "hold_expires_at"], unique=False)
        batch_op.create_index("ix_purchases_member", ["member_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_purchases_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "purchase_line_earnings",
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_purchase_line_earnings_purchase_id_purchases"),
        ),
        sa.PrimaryKeyConstraint(
            "purchase_id", "line_no", "currency", name=op.f("pk_purchase_line_earnings")
        ),
    )
    op.create_table(
        "purchase_lines",
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("quantity", kopilka.core.db.Amount(), nullable=False),
        sa.Column("unit_price", kopilka.core.db.Amount(), nullable=False),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("discount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("redeemed", kopilka.core.db.Amount(), nullable=False),
        sa.Column("redeemed_value", kopilka.core.db.Amount(), nullable=False),
        sa.Column("total_due", kopilka.core.db.Amount(), nullable=False),
        sa.CheckConstraint(
            "discount >= 0 AND discount <= amount", name=op.f("ck_purchase_lines_discount_range")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_lines_quantity_pos")),
        sa.CheckConstraint("total_due >= 0", name=op.f("ck_purchase_lines_total_due_nonneg")),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_purchase_lines_purchase_id_purchases")
        ),
        sa.PrimaryKeyConstraint("purchase_id", "line_no", name=op.f("pk_purchase_lines")),
    )
    op.create_table(
        "purchase_returns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("refund_due", kopilka.core.db.Amount(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_purchase_returns_purchase_id_purchases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_returns")),
        sa.UniqueConstraint(
            "purchase_id", "external_id", name=op.f("uq_purchase_returns_purchase_id_external_id")
        ),
    )
    op.create_table(
        "purchase_return_lines",
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", kopilka.core.db.Amount(), nullable=False),
        sa.Column("refund", kopilka.core.db.Amount(), nullable=False),
        sa.Column("points_restored", kopilka.core.db.Amount(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_return_lines_quantity_pos")),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_purchase_return_lines_purchase_id_purchases"),
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["purchase_returns.id"],
            name=op.f("fk_purchase_return_lines_return_id_purchase_returns"),
        ),
        sa.PrimaryKeyConstraint("return_id", "line_no", name=op.f("pk_purchase_return_lines")),
    )
    with op.batch_alter_table("purchase_return_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_purchase_return_lines_purchase_id"), ["purchase_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("purchase_return_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_return_lines_purchase_id"))

    op.drop_table("purchase_return_lines")
    op.drop_table("purchase_returns")
    op.drop_table("purchase_lines")
    op.drop_table("purchase_line_earnings")
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_index("ix_purchases_occurred_at")
        batch_op.drop_index("ix_purchases_member")
        batch_op.drop_index("ix_purchases_hold")

    op.drop_table("purchases")
