"""Key rotation for data at rest: ``kopilka keys rotate-data``.

Finds every encrypted column of every table (columns of an ``EncryptedText`` or
``EncryptedDate`` type, so other parts of Kopilka that use them are rotated too), reads
the rows a batch at a time in primary-key order, re-encrypts each value that is not under
the active key, and recomputes the blind indexes (``info={"blind_index": (column, kind)}``
on the index column) with the index key in force. Each batch is one transaction with its
rows locked, so the command can run while Kopilka serves; it can be stopped and run again.

Rotating: put a new key first in ``KOPILKA_DATA_KEYS`` (keep the old ones after it),
restart, run ``kopilka keys rotate-data``, then drop the old keys once ``kopilka keys
status`` shows no value under them.

Rotation must see every table, or a table's values would stay under a key about to be
dropped. It does not import the tables itself (``kopilka.models`` sits beside it among the
domains): ``kopilka.wiring`` hands it the complete metadata (``use_metadata``), and without
it rotation refuses to run rather than pass over a table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, select, update
from sqlalchemy.engine import Engine

from kopilka.security import crypto

# ``kopilka.wiring``: the metadata of every table (``kopilka.models`` imported).
_metadata: list[MetaData] = []


def use_metadata(metadata: MetaData) -> None:
    """Look for encrypted columns in ``metadata``, every table's (again replaces it)."""
    _metadata[:] = [metadata]


def _every_table() -> MetaData:
    if not _metadata:
        raise RuntimeError("rotation does not know every table: wire() was not called")
    return _metadata[0]


@dataclass(frozen=True)
class SealedTable:
    name: str
    pk: Column[Any]
    sealed: dict[str, str]  # column -> context (associated data)
    indexes: dict[str, tuple[str, str]]  # index column -> (sealed column, kind)


@dataclass
class Report:
    rows: Counter[str] = field(default_factory=Counter)
    reencrypted: Counter[str] = field(default_factory=Counter)
    reindexed: Counter[str] = field(default_factory=Counter)


def sealed_tables() -> list[SealedTable]:
    """Every table with encrypted columns, from every table's metadata (``use_metadata``)."""
    out = []
    for table in _every_table().sorted_tables:
        sealed = {
            c.name: c.type.context for c in table.columns if isinstance(c.type, crypto.Sealed)
        }
        if not sealed:
            continue
        pks = list(table.primary_key.columns)
        if len(pks) != 1:
            raise RuntimeError(f"{table.name}: rotation needs a single-column primary key")
        indexes = {
            c.name: tuple(c.info["blind_index"]) for c in table.columns if "blind_index" in c.info
        }
        out.append(SealedTable(table.name, pks[0], sealed, indexes))
    return out


def _raw(t: SealedTable) -> Table:
    # The same table with plain text columns: the values are handled here, undecrypted.
    return Table(
        t.name,
        MetaData(),
        Column(t.pk.name, t.pk.type, primary_key=True),
        *[Column(c, Text) for c in t.sealed],
        *[Column(c, String(64)) for c in t.indexes],
    )


def rotate(
    engine: Engine,
    *,
    batch: int = 500,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> Report:
    """Re-encrypt with the active key (every value with ``force``) and recompute indexes."""
    ring = crypto.key_ring()
    report = Report()
    for t in sealed_tables():
        raw = _raw(t)
        pk = raw.c[t.pk.name]
        last: Any = None
        while True:
            with engine.begin() as conn:
                q = select(raw).order_by(pk).limit(batch)
                if last is not None:
                    q = q.where(pk > last)
                if engine.dialect.name == "postgresql":
                    q = q.with_for_update()
                rows = conn.execute(q).mappings().all()
                for row in rows:
                    values = _changes(t, row, ring, force, report)
                    if values:
                        conn.execute(update(raw).where(pk == row[t.pk.name]).values(**values))
                report.rows[t.name] += len(rows)
            if not rows:
                break
            last = rows[-1][t.pk.name]
            if progress is not None:
                progress(t.name, report.rows[t.name])
    return report


def _changes(
    t: SealedTable, row: Any, ring: crypto.KeyRing, force: bool, report: Report
) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    plain: dict[str, str] = {}
    for column, context in t.sealed.items():
        token = row[column]
        if token is None:
            continue
        text = crypto.decrypt(token, context, ring)
        plain[column] = text
        if force or crypto.key_id_of(token) != ring.active:
            values[column] = crypto.encrypt(text, context, ring)
            report.reencrypted[t.name] += 1
    for index_column, (source, kind) in t.indexes.items():
        want = crypto.blind_index(kind, plain[source], ring) if source in plain else None
        if row[index_column] != want:
            values[index_column] = want
            report.reindexed[t.name] += 1
    return values


def key_usage(engine: Engine) -> dict[str, Counter[str]]:
    """Per table, how many stored values each key id encrypted."""
    out: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        for t in sealed_tables():
            raw = _raw(t)
            usage: Counter[str] = Counter()
            for column in t.sealed:
                values = select(raw.c[column]).where(raw.c[column].is_not(None))
                for (token,) in conn.execute(values):
                    usage[crypto.key_id_of(token)] += 1
            out[t.name] = usage
    return out
