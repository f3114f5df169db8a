"""purchases: quantities stored in exponent notation written as plain decimals

Until issue 19 a whole quantity of 10 or more was answered, and stored in the figures a
purchase and a return replay, as ``str(quantity.normalize())``: ``"1E+1"``, ``"2E+1"``.
The API gave those back for every old receipt and the member app showed "2E+1 × …".
They are rewritten here as ``kopilka.core.money.plain`` writes them now (``"10"``,
``"20"``); only the rows whose figures hold an exponent are read.

Revision ID: 0710
Revises: 0003
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0710"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _plain(text: str) -> str:
    # kopilka.core.money.plain as of this revision, kept here so the migration never changes
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    out = f"{value:f}"
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return "0" if out == "-0" else out


def _fixed(figures: Any) -> Any | None:
    """The figures with plain quantities, or None if they need no change."""
    if not isinstance(figures, dict) or not isinstance(figures.get("lines"), list):
        return None
    changed = False
    lines = []
    for line in figures["lines"]:
        q = line.get("quantity") if isinstance(line, dict) else None
        if isinstance(q, str) and "E" in q.upper():
            line = {**line, "quantity": _plain(q)}
            changed = True
        lines.append(line)
    return {**figures, "lines": lines} if changed else None


def upgrade() -> None:
    bind = op.get_bind()
    for table in ("purchases", "purchase_returns"):
        t = sa.table(table, sa.column("id", sa.Uuid()), sa.column("figures", sa.JSON()))
        rows = bind.execute(
            sa.select(t.c.id, t.c.figures).where(sa.cast(t.c.figures, sa.Text).like("%E+%"))
        ).all()
        for ident, figures in rows:
            new = _fixed(figures)
            if new is not None:
                bind.execute(sa.update(t).where(t.c.id == ident).values(figures=new))


def downgrade() -> None:
    pass  # plain quantities are what every version reads
