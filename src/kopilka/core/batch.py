"""Writes of several domains in one round trip (PostgreSQL): data-modifying CTEs.

A receipt moves rows of the purchases, the ledger, the rules' caps and budgets, the tiers
and the outbox. Written one statement each, the round trips and the Python of their
execution cost more than the writes; written as one statement of ``WITH … AS (INSERT …)``
parts, they are one round trip, and still one transaction with every constraint checked.

Each domain says what it writes as parts of a ``core.plan.Plan`` (its own tables: the
layering of the code holds, only the round trip is shared); the plan executor
(``core.write``) makes each part a CTE, with parameters under its own prefix. Every part
reads the
*guard*, a CTE named when the batch is made (``core.write`` uses ``SELECT 1``); a guard
that yields no row would make every part write nothing. The final ``SELECT`` returns the
outputs the parts asked for (how many rows a conditional part took).

All parts run on one snapshot and see each other's rows only through ``RETURNING``; a
part must not write a row another part writes (PostgreSQL refuses that), and foreign keys
between the parts' rows are checked at the end of the statement.

How it is sent: SQLAlchemy compiles each combination of parts once (with the casts its
types want); the statement then goes to psycopg's ``RawCursor`` with ``$n`` placeholders,
prepared on the server. A list parameter that a part reads as ``CAST(:name AS type[])``
(a column of rows, for ``unnest``) travels inside one JSON document (orjson) and is cast
from it in SQL: adapting some eighty Python lists one element at a time cost more of the
server's CPU than the rest of the statement's execution in Python.
"""

from __future__ import annotations

import re
import threading
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from sqlalchemy import Select, bindparam, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

_lock = threading.Lock()
_BIND = re.compile(r"%\((\w+)\)s")
_DOC = "batch_doc"  # the CTE holding the list parameters, one row of arrays
_LIST_CAST = re.compile(r"CAST\(%\((\w+)\)s AS (\w+(?: \w+)*)\[\]\)")


class Outputs(dict[str, Any]):
    """The statement's one row: its outputs by label, also as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class _Compiled:
    """A combination of parts, ready for psycopg: ``$1`` is the document of the list
    parameters (``lists``, when there are any), the next ones the others (``names``, with
    their types' bind processors). ``sql`` is encoded once: psycopg would encode 10 kB
    again per receipt, and a bytes object keeps its hash for psycopg's prepared-statement
    lookup."""

    sql: bytes
    lists: tuple[str, ...]
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_statements: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _Compiled] = {}


def _compile(
    sql: str, types: dict[str, TypeEngine[Any]], lists: set[str], dialect: Dialect
) -> _Compiled:
    compiled = (
        text(sql)
        .bindparams(*(bindparam(name, type_=t) for name, t in types.items()))
        .compile(dialect=dialect)
    )
    in_doc: dict[str, str] = {}  # list parameter -> its element type

    def from_doc(m: re.Match[str]) -> str:
        name, element = m[1], m[2]
        if name not in lists:
            return m[0]
        in_doc.setdefault(name, element)
        # only a bind's name (\w+) goes into the text
        return f'(SELECT "{name}" FROM {_DOC})'  # noqa: S608

    body = _LIST_CAST.sub(from_doc, compiled.string)
    if in_doc:
        # the document, parsed once, its lists made arrays of their types (in order,
        # NULLs kept) by jsonb_to_record: one row the parts read
        if not body.startswith("WITH "):  # pragma: no cover - Batch.sql always is
            raise ValueError("a batch statement starts with WITH")
        columns = ", ".join(f'"{n}" {t}[]' for n, t in in_doc.items())
        body = (
            f"WITH {_DOC} AS MATERIALIZED (SELECT * FROM jsonb_to_record("  # noqa: S608
            f"CAST($1 AS jsonb)) AS d({columns})),\n{body.removeprefix('WITH ')}"
        )
    body, names = _numbered(body, 2 if in_doc else 1)  # $1: the document, if any
    processors = tuple(
        types[n].dialect_impl(dialect).bind_processor(dialect) if n in types else None
        for n in names
    )
    return _Compiled(body.encode(), tuple(in_doc), tuple(names), processors)


def _execute(session: Session, sql: bytes, values: list[Any]) -> list[tuple[Any, ...]]:
    """``sql`` (``$n`` placeholders) with ``values`` in the session's transaction, on
    psycopg's RawCursor, prepared; its rows."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with psycopg.RawCursor(raw) as cursor:
            cursor.execute(sql, values, prepare=True)
            return cursor.fetchall()
    except psycopg.Error as exc:  # as SQLAlchemy would raise it
        raise DBAPIError.instance(sql.decode(), values, exc, psycopg.Error) from exc


def _numbered(sql: str, first: int) -> tuple[str, list[str]]:
    """Compiled pyformat SQL with its binds as ``$first``…, and the bind names in their
    order."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m[1] not in names:
            names.append(m[1])
        return f"${names.index(m[1]) + first}"

    return _BIND.sub(number, sql).replace("%%", "%"), names


class RawSelect:
    """A Core SELECT compiled once, run on psycopg's RawCursor (PostgreSQL): the hot
    path's reads without SQLAlchemy's execution layer, which cost more than the reads
    themselves. Binds and results go through the types' own processors; the rows are
    named tuples (also with ``_mapping``). An expanding IN is not supported: write
    ``column == any_(bindparam(name, type_=ARRAY(...)))``."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        sql, names = _numbered(compiled.string, 1)
        self.sql = sql.encode()  # once (see _Compiled)
        # (name, processor, value): the value of a literal the statement holds (its
        # ``kind == "member"``), used when the caller binds none
        self.binds = tuple(
            (
                n,
                compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect),
                compiled.binds[n].value,
            )
            for n in names
        )
        columns = list(statement.selected_columns)
        self.results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
        self.row = _row_class(tuple(statement.selected_columns.keys()))

    def all(self, session: Session, params: dict[str, Any]) -> list[Any]:
        values = []
        for name, process, literal in self.binds:
            value = params.get(name, literal)
            values.append(process(value) if process is not None else value)
        out = []
        for r in _execute(session, self.sql, values):
            out.append(
                self.row(
                    *(p(v) if p is not None else v for v, p in zip(r, self.results, strict=True))
                )
            )
        return out


def _row_class(labels: tuple[str, ...]) -> Any:
    base = namedtuple("RawRow", labels)  # type: ignore[misc]

    class RawRow(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(labels, self, strict=True))

    return RawRow


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

    def run(self, session: Session) -> Outputs:
        """Execute the statement in the session's transaction; its one row of outputs."""
        sql = self.sql()
        lists = {n for n, v in self.params.items() if isinstance(v, list)}
        key = (sql, tuple(sorted(self.types)), tuple(sorted(lists)))
        with _lock:
            statement = _statements.get(key)
        connection = session.connection()
        if statement is None:
            # The combinations are few, so each is compiled, and prepared by the
            # server, once.
            statement = _compile(sql, self.types, lists, connection.dialect)
            with _lock:
                if len(_statements) > 256:
                    _statements.clear()
                _statements[key] = statement
        values: list[Any] = []
        if statement.lists:
            values.append(orjson.dumps({n: self.params[n] for n in statement.lists}).decode())
        for name, process in zip(statement.names, statement.processors, strict=True):
            value = self.params[name]
            values.append(process(value) if process is not None else value)
        (row,) = _execute(session, statement.sql, values)
        return Outputs(zip((label for label, _ in self.outputs), row, strict=True))
