"""coupons: pools, codes, uses, per-member counters, failed attempts

Revision ID: 0501
Revises: 0001
Create Date: 2026-11-23 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0501"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupon_pools",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reward_kind", sa.String(length=16), nullable=False),
        sa.Column("reward_value", kopilka.core.db.Amount(), nullable=True),
        sa.Column("reward_currency", sa.String(length=16), nullable=True),
        sa.Column("max_discount", kopilka.core.db.Amount(), nullable=True),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("free_sku", sa.String(length=100), nullable=True),
        sa.Column("free_quantity", kopilka.core.db.Amount(), nullable=True),
        sa.Column("valid_from", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("min_receipt", kopilka.core.db.Amount(), nullable=True),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("uses_per_code", sa.Integer(), nullable=True),
        sa.Column("uses_per_member", sa.Integer(), nullable=True),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("group_length", sa.Integer(), nullable=False),
        sa.Column("code_count", sa.BigInteger(), nullable=False),
        sa.Column("generation_status", sa.String(length=16), nullable=False),
        sa.Column("generation_requested", sa.BigInteger(), nullable=False),
        sa.Column("generation_done", sa.BigInteger(), nullable=False),
        sa.Column("generation_error", sa.String(length=500), nullable=True),
        sa.Column(
            "generation_started_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "generation_heartbeat_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "generation_finished_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("code_count >= 0", name=op.f("ck_coupon_pools_code_count_nonneg")),
        sa.CheckConstraint(
            "generation_status IN ('idle','queued','running','done','failed')",
            name=op.f("ck_coupon_pools_generation_status_known"),
        ),
        sa.CheckConstraint(
            "reward_kind IN ('percent','fixed','points','multiplier','free_product')",
            name=op.f("ck_coupon_pools_reward_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('active','paused')", name=op.f("ck_coupon_pools_status_known")
        ),
        sa.CheckConstraint(
            "uses_per_code IS NULL OR uses_per_code >= 1",
            name=op.f("ck_coupon_pools_uses_per_code_pos"),
        ),
        sa.CheckConstraint(
            "uses_per_member IS NULL OR uses_per_member >= 1",
            name=op.f("ck_coupon_pools_uses_per_member_pos"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_pools")),
    )
    op.create_table(
        "coupon_attempts",
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("window_start", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "window_start", name=op.f("pk_coupon_attempts")),
    )
    op.create_table(
        "coupon_member_uses",
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_coupon_member_uses_uses_nonneg")),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["coupon_pools.id"],
            name=op.f("fk_coupon_member_uses_pool_id_coupon_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pool_id", "member_id", name=op.f("pk_coupon_member_uses")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("lookup", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('generated','imported','personal')",
            name=op.f("ck_coupons_source_known"),
        ),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_coupons_uses_nonneg")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["coupon_pools.id"],
            name=op.f("fk_coupons_pool_id_coupon_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("lookup", name=op.f("uq_coupons_lookup")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index("ix_coupons_member_id", ["member_id"], unique=False)
        batch_op.create_index("ix_coupons_pool_id", ["pool_id", "id"], unique=False)

    op.create_table(
        "coupon_uses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("coupon_id", BigId, nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("discount", kopilka.core.db.Amount(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=True),
        sa.Column("used_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupon_uses_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_uses")),
        sa.UniqueConstraint(
            "coupon_id", "purchase_id", name=op.f("uq_coupon_uses_coupon_id_purchase_id")
        ),
    )
    with op.batch_alter_table("coupon_uses", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_uses_coupon_id", ["coupon_id", "used_at"], unique=False)
        batch_op.create_index("ix_coupon_uses_purchase_id", ["purchase_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coupon_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_uses_purchase_id")
        batch_op.drop_index("ix_coupon_uses_coupon_id")
    op.drop_table("coupon_uses")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_pool_id")
        batch_op.drop_index("ix_coupons_member_id")
    op.drop_table("coupons")
    op.drop_table("coupon_member_uses")
    op.drop_table("coupon_attempts")
    op.drop_table("coupon_pools")
