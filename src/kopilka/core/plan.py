"""A plan: the rows an operation writes, decided before anything is written.

Pure planners (``ledger.planner``, the receipt's figures, the tiers' move …) decide what
to write from what was read; they describe it as parts of a ``Plan``, and one executor per
database (``core.write``) writes it: on PostgreSQL the whole plan in one statement, on
SQLite part by part. A part is one of four shapes:

* ``Insert``: new rows; a row's ``id`` may be a ``Ref``, an id the statement makes that
  other rows of the plan name (a posting naming the lot its entry makes). With
  ``conflict`` (a unique key) it inserts only rows not there yet, and a row already there
  is ``Contended`` (a receipt a twin recorded a moment ago, a tier state made meanwhile);
* ``AddTo``: add to columns of existing rows (``balance += delta``): atomic in-database
  arithmetic, never read-modify-write;
* ``UpdateIfUnchanged``: set columns of rows that still hold the values read; when one
  does not, the plan was made on stale reads, and the writer raises ``Contended`` (the
  caller's one retry, ``core.write.retrying``, reads again);
* ``UpsertAdd``: insert rows, or add to those already there (a usage counter); with
  ``limits``, only while the sum stays within each row's limit (a campaign's budget), and
  a row that would pass it is ``Contended``.

Parts are written in their order on SQLite; on PostgreSQL they run on one snapshot, so two
parts must not write the same row (``Plan.add_to`` merges what is added to one row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table

from kopilka.core.money import ZERO


def table(model: Any) -> Table:
    """The ``Table`` of a mapped class (what a part names)."""
    t = model.__table__
    if not isinstance(t, Table):  # pragma: no cover - every model is a plain table
        raise TypeError(f"{model} is not mapped to a table")
    return t


class Contended(Exception):
    """A row a plan was made on changed before it was written (a conditional update took
    fewer rows than planned); the transaction must be rolled back."""

    def __init__(self, part: str) -> None:
        super().__init__(f"{part}: a row changed after it was read")
        self.part = part


@dataclass(frozen=True)
class Ref:
    """The ``index``-th id the statement makes for ``table`` (see ``Plan.new_id``)."""

    table: str
    index: int


@dataclass
class Insert:
    table: Table
    rows: list[dict[str, Any]]
    conflict: tuple[str, ...] = ()  # a unique key: rows already there are Contended
    name: str = ""  # what ``Contended`` names


@dataclass
class AddTo:
    table: Table
    key: str
    columns: tuple[str, ...]
    deltas: dict[Any, list[Decimal]] = field(default_factory=dict)  # key -> per column


@dataclass
class UpdateIfUnchanged:
    """``rows``: ``(key, expected, values)``: set ``values`` where the row still holds
    ``expected`` (every row must have the same columns in each)."""

    table: Table
    key: str
    rows: list[tuple[Any, dict[str, Any], dict[str, Any]]]
    name: str  # what ``Contended`` names


@dataclass
class UpsertAdd:
    """``limits`` (one per row, None for no limit): the most the single ``add`` column may
    reach; a row that would pass it is not written, and is ``Contended`` (``name``)."""

    table: Table
    conflict: tuple[str, ...]
    add: tuple[str, ...]
    rows: list[dict[str, Any]]
    limits: list[Decimal | None] | None = None
    name: str = ""


Part = Insert | AddTo | UpdateIfUnchanged | UpsertAdd


@dataclass
class Plan:
    """Parts to write, in order, and the ids the statement makes."""

    parts: list[Part] = field(default_factory=list)
    made: dict[str, int] = field(default_factory=dict)  # table -> how many new ids

    def new_id(self, table: Table) -> Ref:
        """An id for a new row of ``table`` (its ``id`` column), made when written."""
        n = self.made.get(table.name, 0)
        self.made[table.name] = n + 1
        return Ref(table.name, n)

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.parts.append(Insert(table, rows))

    def insert_new(
        self, table: Table, conflict: tuple[str, ...], rows: list[dict[str, Any]], name: str
    ) -> None:
        """Insert ``rows``, none of which may be there yet by ``conflict`` (a unique key):
        one that is makes the writer raise ``Contended(name)``."""
        if rows:
            self.parts.append(Insert(table, rows, conflict, name))

    def add_to(
        self, table: Table, key: str, columns: tuple[str, ...], deltas: dict[Any, list[Decimal]]
    ) -> None:
        """Add ``deltas`` (per key, one per column) to rows of ``table``; merged with what
        the plan adds to the same columns already (one statement updates a row once)."""
        part = next(
            (
                p
                for p in self.parts
                if isinstance(p, AddTo) and (p.table, p.key, p.columns) == (table, key, columns)
            ),
            None,
        )
        if part is None:
            part = AddTo(table, key, columns)
            self.parts.append(part)
        for k, ds in deltas.items():
            have = part.deltas.get(k, [ZERO] * len(columns))
            part.deltas[k] = [a + b for a, b in zip(have, ds, strict=True)]

    def update_if_unchanged(
        self,
        table: Table,
        key: str,
        rows: list[tuple[Any, dict[str, Any], dict[str, Any]]],
        name: str,
    ) -> None:
        if rows:
            self.parts.append(UpdateIfUnchanged(table, key, rows, name))

    def upsert_add(
        self,
        table: Table,
        conflict: tuple[str, ...],
        add: tuple[str, ...],
        rows: list[dict[str, Any]],
    ) -> None:
        if rows:
            self.parts.append(UpsertAdd(table, conflict, add, rows))

    def upsert_add_within(
        self,
        table: Table,
        conflict: tuple[str, ...],
        column: str,
        rows: list[dict[str, Any]],
        limits: list[Decimal | None],
        name: str,
    ) -> None:
        """``upsert_add`` of one ``column`` that may reach at most ``limits`` (per row);
        a row that would pass its limit makes the writer raise ``Contended(name)``."""
        if rows:
            self.parts.append(UpsertAdd(table, conflict, (column,), rows, limits, name))
