"""security: personal data encrypted with blind indexes, key rotation columns, consent
actor, rate-limit counters, velocity events and flags, append-only audit log

Existing members are encrypted in place with the key ring of the settings in force
(``KOPILKA_DATA_KEYS``/``KOPILKA_INDEX_KEY``; set them before migrating real data).

Revision ID: 0201
Revises: 0001
Create Date: 2026-11-23 03:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kopilka.core.db
from kopilka.audit import guards as audit_guards
from kopilka.security import crypto

revision: str = "0201"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
# The audit log's append-only triggers need its table (created by the ledger's 0002).
depends_on: str | Sequence[str] | None = "0002"

# (old plain column, new encrypted column, blind-index column or None, index kind)
PERSONAL = (
    ("card_number", "card_number_enc", "card_number_index", "card"),
    ("phone", "phone_enc", "phone_index", "phone"),
    ("email", "email_enc", "email_index", "email"),
    ("name", "name_enc", "name_index", "name"),
    ("birth_date", "birth_date_enc", None, None),
)


def _encrypt_existing() -> None:
    bind = op.get_bind()
    ring = crypto.key_ring()
    old = sa.table(
        "members",
        sa.column("id", sa.Uuid()),
        sa.column("card_number", sa.String()),
        sa.column("phone", sa.String()),
        sa.column("email", sa.String()),
        sa.column("name", sa.String()),
        sa.column("birth_date", sa.Date()),
        *[sa.column(enc, sa.Text()) for _, enc, _, _ in PERSONAL],
        *[sa.column(ix, sa.String()) for _, _, ix, _ in PERSONAL if ix],
    )
    rows = bind.execute(sa.select(old.c.id, *[old.c[p] for p, _, _, _ in PERSONAL])).all()
    for row in rows:
        values: dict[str, object] = {}
        for plain, enc, ix, kind in PERSONAL:
            value = row._mapping[plain]
            if value is None:
                continue
            text = value.isoformat() if plain == "birth_date" else str(value)
            values[enc] = crypto.encrypt(text, f"members.{plain}", ring)
            if ix and kind:
                values[ix] = crypto.blind_index(kind, text, ring)
        if values:
            bind.execute(sa.update(old).where(old.c.id == row.id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        for _, enc, ix, _ in PERSONAL:
            batch_op.add_column(sa.Column(enc, sa.Text(), nullable=True))
            if ix:
                batch_op.add_column(sa.Column(ix, sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("erased_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    _encrypt_existing()
    with op.batch_alter_table("members", schema=None) as batch_op:
        for constraint in ("card_number", "email", "phone"):
            batch_op.drop_constraint(op.f(f"uq_members_{constraint}"), type_="unique")
        for plain, _, _, _ in PERSONAL:
            batch_op.drop_column(plain)
        batch_op.alter_column("card_number_enc", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column(
            "card_number_index", existing_type=sa.String(length=64), nullable=False
        )
        for ix in ("card_number_index", "email_index", "phone_index"):
            batch_op.create_unique_constraint(op.f(f"uq_members_{ix}"), [ix])
        batch_op.create_index(op.f("ix_members_name_index"), ["name_index"], unique=False)

    with op.batch_alter_table("member_consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=200), nullable=True))

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))

    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("prev_count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_limit_counters")),
    )
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limit_counters_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "velocity_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_velocity_events")),
        sa.UniqueConstraint(
            "purchase_id", "kind", name=op.f("uq_velocity_events_purchase_id_kind")
        ),
    )
    with op.batch_alter_table("velocity_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_velocity_events_member_kind_at", ["member_id", "kind", "at"], unique=False
        )

    op.create_table(
        "security_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=50), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", kopilka.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "status IN ('open','dismissed','confirmed')",
            name=op.f("ck_security_flags_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_flags")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_security_flags_dedupe_key")),
    )
    with op.batch_alter_table("security_flags", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_security_flags_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            "ix_security_flags_status_created", ["status", "created_at"], unique=False
        )

    for statement in audit_guards.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def _decrypt_back() -> None:
    bind = op.get_bind()
    ring = crypto.key_ring()
    t = sa.table(
        "members",
        sa.column("id", sa.Uuid()),
        sa.column("card_number", sa.String()),
        sa.column("phone", sa.String()),
        sa.column("email", sa.String()),
        sa.column("name", sa.String()),
        sa.column("birth_date", sa.Date()),
        *[sa.column(enc, sa.Text()) for _, enc, _, _ in PERSONAL],
    )
    rows = bind.execute(sa.select(t.c.id, *[t.c[enc] for _, enc, _, _ in PERSONAL])).all()
    for row in rows:
        values: dict[str, object] = {}
        for plain, enc, _, _ in PERSONAL:
            token = row._mapping[enc]
            if token is None:
                continue
            text = crypto.decrypt(token, f"members.{plain}", ring)
            values[plain] = dt.date.fromisoformat(text) if plain == "birth_date" else text
        if values:
            bind.execute(sa.update(t).where(t.c.id == row.id).values(**values))


def downgrade() -> None:
    for statement in audit_guards.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table("security_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_security_flags_status_created")
        batch_op.drop_index(batch_op.f("ix_security_flags_member_id"))
    op.drop_table("security_flags")
    with op.batch_alter_table("velocity_events", schema=None) as batch_op:
        batch_op.drop_index("ix_velocity_events_member_kind_at")
    op.drop_table("velocity_events")
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counters_expires_at"))
    op.drop_table("rate_limit_counters")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("replaced_by")
    with op.batch_alter_table("member_consents", schema=None) as batch_op:
        batch_op.drop_column("actor")

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_number", sa.String(length=13), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
    _decrypt_back()
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_members_name_index"))
        for ix in ("card_number_index", "email_index", "phone_index"):
            batch_op.drop_constraint(op.f(f"uq_members_{ix}"), type_="unique")
        for _, enc, ix, _ in PERSONAL:
            batch_op.drop_column(enc)
            if ix:
                batch_op.drop_column(ix)
        batch_op.drop_column("erased_at")
        batch_op.alter_column("card_number", existing_type=sa.String(length=13), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_members_card_number"), ["card_number"])
        batch_op.create_unique_constraint(op.f("uq_members_email"), ["email"])
        batch_op.create_unique_constraint(op.f("uq_members_phone"), ["phone"])
