"""console: TOTP secrets encrypted at rest (users.totp_secret and the secret of an
enrolment in progress, console_sessions.pending_totp_secret)

A copy of the database (a backup, a replica, a dump handed to support) no longer gives
anyone the second factor of the programme team. Existing secrets are encrypted in place
with the key ring of the settings in force, as the members' personal data was (0201);
``kopilka keys rotate`` moves them to a new key with the rest.

Revision ID: 0706
Revises: 0601
Create Date: 2026-11-29 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kopilka.security import crypto

revision: str = "0706"
down_revision: str | None = "0601"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, primary key, column): the context of each value is "table.column"
SECRETS = (
    ("users", "id", "totp_secret"),
    ("console_sessions", "id", "pending_totp_secret"),
)


def _convert(seal: bool) -> None:
    bind = op.get_bind()
    ring = crypto.key_ring()
    for table, pk, column in SECRETS:
        t = sa.table(table, sa.column(pk), sa.column(column, sa.Text()))
        rows = bind.execute(sa.select(t.c[pk], t.c[column]).where(t.c[column].is_not(None)))
        for key, value in rows.all():
            context = f"{table}.{column}"
            new = (
                crypto.encrypt(value, context, ring)
                if seal
                else crypto.decrypt(value, context, ring)
            )
            bind.execute(sa.update(t).where(t.c[pk] == key).values({column: new}))


def upgrade() -> None:
    for table, _, column in SECRETS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=True
            )
    _convert(seal=True)


def downgrade() -> None:
    _convert(seal=False)
    for table, _, column in SECRETS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=True
            )
