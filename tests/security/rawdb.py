"""Reading the database as an intruder with a copy of it would: every byte of the SQLite
file and its write-ahead log, and every row of every table as text (PostgreSQL: the
tables; there are no files to read from here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from kopilka.core.db import Database


def rows_as_text(db: Database) -> list[str]:
    parts = []
    with db.engine.connect() as c:
        for t in inspect(c).get_table_names():
            if db.dialect == "postgresql":
                parts.extend(str(r[0]) for r in c.execute(text(f'SELECT t::text FROM "{t}" t')))
            else:
                parts.extend(repr(tuple(r)) for r in c.execute(text(f'SELECT * FROM "{t}"')))
    return parts


def raw_dump(db: Database) -> str:
    parts = rows_as_text(db)
    if db.dialect == "sqlite":
        path = Path(str(db.engine.url.database))
        for p in (path, path.with_name(path.name + "-wal")):
            if p.exists():
                data = _read_elsewhere(p)
                parts += [data.decode("utf-8", errors="replace"), data.decode("latin-1")]
    return "\n".join(parts)


def _read_elsewhere(path: Path) -> bytes:
    # Read in another process: closing a descriptor of the database file in this one would
    # drop every POSIX lock SQLite holds on it here, and let other processes corrupt it.
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
            str(path),
        ],
        check=True,
        capture_output=True,
    ).stdout


def found_in(dump: str, values: list[str]) -> list[str]:
    """Which of ``values`` appear in the dump (any case)."""
    low = dump.lower()
    return [v for v in values if v.lower() in low]
