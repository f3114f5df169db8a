"""reports: cohort cells by joining day, so a cohort cut by a period counts its own members

``report_cohorts`` counted the members who joined in a *month*; a report over 10 March –
15 June sized the June cohort by the members who joined by the 15th but took its cells
from the whole of June (retention 1.913). Kept by joining day, the cells add up over any
days a period picks. The cells are rebuilt here from ``report_member_days`` (as a full
rollup would).

Revision ID: 0709
Revises: 0705
Create Date: 2026-12-07 15:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0709"
down_revision: str | None = "0705"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A member counts in the month of each day they bought, from the month they joined on.
_FILL = {
    "postgresql": """
INSERT INTO report_cohorts (joined_day, month, members)
SELECT rm.joined_day, CAST(date_trunc('month', md.day) AS date), count(DISTINCT md.member_id)
FROM report_member_days md JOIN report_members rm ON rm.member_id = md.member_id
WHERE rm.joined_day < CAST(date_trunc('month', md.day) + interval '1 month' AS date)
GROUP BY rm.joined_day, CAST(date_trunc('month', md.day) AS date)
""",
    "sqlite": """
INSERT INTO report_cohorts (joined_day, month, members)
SELECT rm.joined_day, substr(md.day, 1, 7) || '-01', count(DISTINCT md.member_id)
FROM report_member_days md JOIN report_members rm ON rm.member_id = md.member_id
WHERE rm.joined_day < date(substr(md.day, 1, 7) || '-01', '+1 month')
GROUP BY rm.joined_day, substr(md.day, 1, 7) || '-01'
""",
}
# Back to months of joining: a member joins on one day, so the days' counts add up.
_BY_MONTH = {
    "postgresql": """
SELECT CAST(date_trunc('month', joined_day) AS date) AS cohort, month, sum(members) AS members
FROM report_cohorts GROUP BY CAST(date_trunc('month', joined_day) AS date), month
""",
    "sqlite": """
SELECT substr(joined_day, 1, 7) || '-01' AS cohort, month, sum(members) AS members
FROM report_cohorts GROUP BY substr(joined_day, 1, 7) || '-01', month
""",
}


def _table(first: str) -> None:
    op.create_table(
        "report_cohorts",
        sa.Column(first, sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(first, "month", name=op.f("pk_report_cohorts")),
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("report_cohorts")
    _table("joined_day")
    op.execute(_FILL[dialect])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    rows = op.get_bind().execute(sa.text(_BY_MONTH[dialect])).mappings().all()
    op.drop_table("report_cohorts")
    _table("cohort")
    if rows:
        table = sa.table(
            "report_cohorts",
            sa.column("cohort", sa.Date()),
            sa.column("month", sa.Date()),
            sa.column("members", sa.Integer()),
        )
        op.bulk_insert(
            table,
            [
                {
                    "cohort": _day(r["cohort"]),
                    "month": _day(r["month"]),
                    "members": int(r["members"]),
                }
                for r in rows
            ],
        )


def _day(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
