"""Database triggers that make journal entries and postings append-only.

Used by the ledger migration; the test suite uses them to lift the guard while it empties
the database between tests (SQLite runs row triggers on ``DELETE``; PostgreSQL's
``TRUNCATE`` does not fire row triggers).
"""

from __future__ import annotations

TABLES = ("ledger_entries", "ledger_postings")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION kopilka_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def create_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        out = [_PG_FUNCTION]
        for t in TABLES:
            out.append(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION kopilka_ledger_append_only()"
            )
        return out
    out = []
    for t in TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {t} refused'); END"
            )
    return out


def drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        out = [f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in TABLES]
        out.append("DROP FUNCTION IF EXISTS kopilka_ledger_append_only()")
        return out
    return [f"DROP TRIGGER IF EXISTS {t}_no_{op} " for t in TABLES for op in ("update", "delete")]
