"""referrals: one per friend, their rewards, the identities members enrolled with (kept as
digests after an erasure), invite links opened; purchases.payment_fingerprint

Revision ID: 0711
Revises: 0710 (a new column of purchases) and 0201 (the members' blind indexes the
identities are copied from): it joins those two branches
Create Date: 2026-12-07 19:19:17.090813
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db

revision: str = "0711"
down_revision: str | tuple[str, ...] | None = ("0710", "0201")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_identities",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "digest", name=op.f("pk_referral_identities")),
    )
    op.create_table(
        "referral_visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referral_visits_referrer_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_visits")),
    )
    with op.batch_alter_table("referral_visits", schema=None) as batch_op:
        batch_op.create_index("ix_referral_visits_at", ["at"], unique=False)

    op.create_table(
        "referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("friend_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("review", sa.String(length=16), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("cashier", sa.String(length=200), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("qualifying_purchase_id", sa.Uuid(), nullable=True),
        sa.Column("qualified_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("hold_until", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rewarded_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "review IN ('none', 'pending', 'approved', 'rejected')",
            name=op.f("ck_referrals_review_known"),
        ),
        sa.CheckConstraint(
            "status IN ('joined', 'qualified', 'rewarded', 'rejected', 'reversed')",
            name=op.f("ck_referrals_status_known"),
        ),
        sa.CheckConstraint("referrer_id <> friend_id", name=op.f("ck_referrals_not_self")),
        sa.ForeignKeyConstraint(
            ["friend_id"], ["members.id"], name=op.f("fk_referrals_friend_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referrals_referrer_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("friend_id", name=op.f("uq_referrals_friend_id")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_cashier", ["cashier", "created_at"], unique=False)
        batch_op.create_index("ix_referrals_device", ["device", "created_at"], unique=False)
        batch_op.create_index("ix_referrals_referrer", ["referrer_id", "created_at"], unique=False)
        batch_op.create_index("ix_referrals_review", ["review", "created_at"], unique=False)
        batch_op.create_index("ix_referrals_status", ["status", "hold_until"], unique=False)

    op.create_table(
        "referral_rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("amount", kopilka.core.db.Amount(), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("coupon_pool", sa.String(length=200), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("available_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('friend', 'referrer', 'bonus')", name=op.f("ck_referral_rewards_role_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'standing', 'revoked')",
            name=op.f("ck_referral_rewards_status_known"),
        ),
        sa.CheckConstraint(
            "(entry_id IS NULL) <> (coupon_pool IS NULL)",
            name=op.f("ck_referral_rewards_points_or_coupon"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_referral_rewards_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_rewards_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_rewards_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint(
            "referral_id", "round", "role", name=op.f("uq_referral_rewards_referral_id_round_role")
        ),
    )
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_rewards_member", ["member_id", "created_at"], unique=False
        )

    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_fingerprint", sa.String(length=64), nullable=True))

    # The members enrolled before: their phone, email and card digests are the blind
    # indexes they already have (a mailbox written another way is known from now on).
    members = sa.table(
        "members",
        sa.column("id", sa.Uuid()),
        sa.column("created_at"),
        sa.column("phone_index", sa.String()),
        sa.column("email_index", sa.String()),
        sa.column("card_number_index", sa.String()),
    )
    identities = sa.table(
        "referral_identities",
        sa.column("kind"),
        sa.column("digest"),
        sa.column("member_id"),
        sa.column("created_at"),
    )
    for kind, column in (
        ("phone", "phone_index"),
        ("email", "email_index"),
        ("card", "card_number_index"),
    ):
        digest = members.c[column]
        op.execute(
            identities.insert().from_select(
                ["kind", "digest", "member_id", "created_at"],
                sa.select(sa.literal(kind), digest, members.c.id, members.c.created_at).where(
                    digest.is_not(None)
                ),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_column("payment_fingerprint")

    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_rewards_member")

    op.drop_table("referral_rewards")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_status")
        batch_op.drop_index("ix_referrals_review")
        batch_op.drop_index("ix_referrals_referrer")
        batch_op.drop_index("ix_referrals_device")
        batch_op.drop_index("ix_referrals_cashier")

    op.drop_table("referrals")
    with op.batch_alter_table("referral_visits", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_visits_at")

    op.drop_table("referral_visits")
    op.drop_table("referral_identities")
