"""Database triggers that make the audit log append-only (migration 0201).

The test suite lifts them while it empties the database between tests (SQLite runs row
triggers on ``DELETE``; PostgreSQL's ``TRUNCATE`` does not fire row triggers).
"""

from __future__ import annotations

TABLE = "audit_log"

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION kopilka_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def create_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            _PG_FUNCTION,
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION kopilka_audit_append_only()",
        ]
    return [
        f"CREATE TRIGGER {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]


def drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
            "DROP FUNCTION IF EXISTS kopilka_audit_append_only()",
        ]
    return [f"DROP TRIGGER IF EXISTS {TABLE}_no_{op}" for op in ("update", "delete")]
