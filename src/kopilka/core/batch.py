"""Writes of several domains in one round trip (PostgreSQL): data-modifying CTEs.

A receipt moves rows of the purchases, the ledger, the rules' caps and budgets, the tiers
and the outbox. Written one statement each, the round trips and the Python of their
execution cost more than the writes; written as one statement of ``WITH … AS (INSERT …)``
parts, they are one round trip, and still one transaction with every constraint checked.

Each domain adds its own parts (its own SQL over its own tables: the layering of the code
holds, only the round trip is shared) with parameters under its own prefix. Every part
reads the *guard*: the CTE that inserts the row the others hang on (the receipt, inserted
``ON CONFLICT DO NOTHING``), so that when the guard inserts nothing (the receipt is
already recorded) no part writes anything either. The final ``SELECT`` returns the
outputs the parts asked for (how many rows a conditional update took, the guard's id).

All parts run on one snapshot and see each other's rows only through ``RETURNING``; a
part must not write a row another part writes (PostgreSQL refuses that), and foreign keys
between the parts' rows are checked at the end of the statement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

_lock = threading.Lock()
_statements: dict[str, TextClause] = {}


@dataclass
class Batch:
    """A statement being assembled: ``add`` parts, ``output`` figures, then ``run``."""

    guard: str
    parts: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    types: dict[str, TypeEngine[Any]] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def add(
        self,
        name: str,
        sql: str,
        params: dict[str, Any],
        types: dict[str, TypeEngine[Any]] | None = None,
    ) -> None:
        """A CTE ``name AS (sql)``; ``sql`` writes only ``FROM {guard}`` (the token is
        replaced by the guard's name), or is the guard itself. ``params`` are bound by
        name (``:name`` in ``sql``) and must not clash with another part's; ``types``
        give the SQLAlchemy type of those that need one."""
        if any(n == name for n, _ in self.parts):
            raise ValueError(f"part {name!r} added twice")
        clash = self.params.keys() & params.keys()
        if clash:
            raise ValueError(f"parameters {sorted(clash)} bound by two parts")
        self.parts.append((name, sql))
        self.params.update(params)
        self.types.update(types or {})

    def output(self, label: str, sql: str) -> None:
        """A figure of the final ``SELECT`` (``sql`` may read any part's ``RETURNING``)."""
        self.outputs.append((label, sql))

    def sql(self) -> str:
        if not self.outputs:
            raise ValueError("a batch needs at least one output")
        ctes = ",\n".join(
            f"{name} AS (\n{sql.replace('{guard}', self.guard)}\n)" for name, sql in self.parts
        )
        select = ", ".join(f"{sql} AS {label}" for label, sql in self.outputs)
        # only the parts' fixed SQL and names go into the text; every value is bound
        return f"WITH {ctes}\nSELECT {select}"

    def run(self, session: Session) -> Row[Any]:
        """Execute the statement in the session's transaction; its one row of outputs."""
        sql = self.sql()
        key = sql + "|" + ",".join(sorted(self.types))
        with _lock:
            statement = _statements.get(key)
        if statement is None:
            # The texts are few (one per combination of parts), so each is built, and
            # prepared by the server, once.
            statement = text(sql).bindparams(
                *(bindparam(name, type_=t) for name, t in self.types.items())
            )
            with _lock:
                if len(_statements) > 256:
                    _statements.clear()
                _statements[key] = statement
        return session.connection().execute(statement, self.params).one()
