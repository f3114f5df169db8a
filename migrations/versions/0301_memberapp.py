"""member app: devices, sign-in codes, app links, push subscriptions, VAPID keys, push log

Revision ID: 0301
Revises: 0001
Create Date: 2026-11-24 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0301"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = kopilka.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("card_no", sa.String(length=10), nullable=False),
        sa.Column("card_secret", sa.Text(), nullable=False),
        sa.Column("last_code_step", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("signed_in_by", sa.String(length=8), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_seen_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("revoked_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_devices_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_devices")),
        sa.UniqueConstraint("card_no", name=op.f("uq_member_devices_card_no")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_member_devices_token_hash")),
    )
    op.create_index(
        "ix_member_devices_member", "member_devices", ["member_id", "created_at"], unique=False
    )
    op.create_table(
        "member_sign_in_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_sign_in_codes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_sign_in_codes")),
    )
    op.create_index(
        "ix_member_sign_in_codes_member",
        "member_sign_in_codes",
        ["member_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_member_sign_in_codes_expires_at"),
        "member_sign_in_codes",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "member_app_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_app_links_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_app_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_member_app_links_token_hash")),
    )
    op.create_index(
        "ix_member_app_links_member",
        "member_app_links",
        ["member_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_member_app_links_expires_at"), "member_app_links", ["expires_at"], unique=False
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("endpoint_index", sa.String(length=64), nullable=False),
        sa.Column("p256dh", sa.Text(), nullable=False),
        sa.Column("auth", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("last_sent_at", When, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["member_devices.id"],
            name=op.f("fk_push_subscriptions_device_id_member_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_push_subscriptions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint_index", name=op.f("uq_push_subscriptions_endpoint_index")),
    )
    op.create_index(
        op.f("ix_push_subscriptions_device_id"), "push_subscriptions", ["device_id"], unique=False
    )
    op.create_index(
        op.f("ix_push_subscriptions_member_id"), "push_subscriptions", ["member_id"], unique=False
    )
    op.create_table(
        "vapid_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vapid_keys")),
    )
    op.create_table(
        "push_notices",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("handled_at", When, nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_push_notices")),
    )
    op.create_index(op.f("ix_push_notices_member_id"), "push_notices", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_push_notices_member_id"), table_name="push_notices")
    op.drop_table("push_notices")
    op.drop_table("vapid_keys")
    op.drop_index(op.f("ix_push_subscriptions_member_id"), table_name="push_subscriptions")
    op.drop_index(op.f("ix_push_subscriptions_device_id"), table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index(op.f("ix_member_app_links_expires_at"), table_name="member_app_links")
    op.drop_index("ix_member_app_links_member", table_name="member_app_links")
    op.drop_table("member_app_links")
    op.drop_index(op.f("ix_member_sign_in_codes_expires_at"), table_name="member_sign_in_codes")
    op.drop_index("ix_member_sign_in_codes_member", table_name="member_sign_in_codes")
    op.drop_table("member_sign_in_codes")
    op.drop_index("ix_member_devices_member", table_name="member_devices")
    op.drop_table("member_devices")
