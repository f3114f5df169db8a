"""The executor of a ``core.plan.Plan``: one per database, the same rows either way.

PostgreSQL: the whole plan is one statement of data-modifying parts (``core.batch``), one
round trip; ids the plan names before they exist (``Ref``) are drawn from the table's
sequence by a part of the same statement. A plan may also be added to a ``Batch`` that
other parts share (a receipt's, guarded by its insert): ``add_parts``, then ``check``
the outputs. SQLite: the same parts, one statement at a time, in order.

Both raise ``Contended`` when an ``UpdateIfUnchanged`` took fewer rows than planned; what
cannot be planned ahead is retried once, by ``retrying`` (the one place that says so).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, Table, and_, bindparam, insert, literal, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes

from kopilka.core.batch import Batch, Outputs
from kopilka.core.db import Amount, UTCDateTime
from kopilka.core.money import to_units
from kopilka.core.plan import AddTo, Contended, Insert, Plan, Ref, UpdateIfUnchanged, UpsertAdd

T = TypeVar("T")

_GUARD = "plan_guard"


def write(session: Session, plan: Plan) -> None:
    """Write ``plan`` in the session's transaction; ``Contended`` if a conditional part
    did not take (the caller rolls back)."""
    if not plan.parts:
        return
    if session.get_bind().dialect.name == "postgresql":
        batch = Batch(_GUARD)
        batch.add(_GUARD, "SELECT 1 AS one", {})
        checks = add_parts(batch, plan, "w")
        batch.output("plan_written", f"(SELECT count(*) FROM {_GUARD})")  # noqa: S608
        check(batch.run(session), checks)
        return
    _write_one_by_one(session, plan)


def retrying(session: Session, attempt: Callable[[bool], T]) -> T:
    """``attempt(False)``; when it raises ``Contended`` (a budget drawn or a tier moved by
    another transaction between its reads and its writes), the transaction is rolled back
    and ``attempt(True)`` runs once more: a retry may lock what the first attempt only
    read. A second ``Contended`` is not retried."""
    try:
        return attempt(False)
    except Contended:
        session.rollback()
        return attempt(True)


def check(outputs: Outputs, checks: Sequence[tuple[str, str, int]]) -> None:
    """``Contended`` for the first conditional part (``add_parts``' checks: output label,
    name, rows planned) that took fewer rows than planned."""
    for label, name, planned in checks:
        if outputs[label] < planned:
            raise Contended(name)


@functools.cache
def _defaulted(table: Table) -> tuple[Column[Any], ...]:
    """``table``'s columns with a Python-side default (once per table)."""
    return tuple(
        c
        for c in table.columns
        if c.default is not None and (c.default.is_scalar or c.default.is_callable)
    )


def _complete(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the Python-side defaults of the columns they leave out (the model's
    ``default=now`` …), so that both executors write the same values."""
    missing = _defaulted(table)
    if all(c.name in r for r in rows for c in missing):
        return rows  # every row names every such column: nothing to add
    out = []
    for r in rows:
        row = dict(r)
        for c in missing:
            if c.name not in row:
                arg = c.default.arg  # type: ignore[union-attr]
                row[c.name] = arg(None) if callable(arg) else arg
        out.append(row)
    return out


def _on_update(table: Table, setting: Sequence[str]) -> dict[str, Any]:
    """The ``onupdate`` values of ``table``'s columns not in ``setting`` (``updated_at``)."""
    out: dict[str, Any] = {}
    for c in table.columns:
        if c.onupdate is not None and c.name not in setting:
            arg = c.onupdate.arg  # type: ignore[attr-defined]
            out[c.name] = arg(None) if callable(arg) else arg
    return out


# ---------------------------------------------------------------------------- PostgreSQL


@functools.cache
def _column(table: Table, name: str) -> tuple[str, Callable[[Any], Any] | None, bool]:
    """``_array_type`` of ``table.name``, and whether it is JSON (once per column: a
    receipt's plan asks for some forty)."""
    column = table.c[name]
    element, convert = _array_type(column)
    return element, convert, isinstance(column.type, sqltypes.JSON)


def _array_type(column: Column[Any]) -> tuple[str, Callable[[Any], Any] | None]:
    """The element type of an array of ``column``'s values, and the conversion of a
    value for the JSON document ``core.batch`` sends them in."""
    t = column.type
    if isinstance(t, Amount):
        return "bigint", to_units
    if isinstance(t, UTCDateTime | sqltypes.DateTime):
        return "timestamptz", None
    if isinstance(t, sqltypes.Uuid):
        return "uuid", None
    if isinstance(t, sqltypes.Boolean):
        return "boolean", None
    if isinstance(t, sqltypes.Integer):
        return "bigint", None
    if isinstance(t, sqltypes.String):
        return "text", None
    if isinstance(t, sqltypes.Date):
        return "date", None
    if isinstance(t, sqltypes.JSON):
        # as text (the column's own serialisation), cast to json where it is written: a
        # document nested in the statement's JSON parameter would be parsed into jsonb and
        # printed again (its keys reordered), at a cost on every receipt
        return "text", json.dumps
    raise TypeError(f"{column} ({t!r}) cannot be written by a plan yet")


def _arrays(
    table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]], prefix: str
) -> tuple[list[str], dict[str, Any]]:
    """``CAST(:param AS type[])`` for each column (values of ``rows`` in column order),
    and the parameters."""
    casts: list[str] = []
    params: dict[str, Any] = {}
    for i, name in enumerate(names):
        element, convert, _ = _column(table, name)
        param = f"{prefix}_{name}"
        casts.append(f"CAST(:{param} AS {element}[])")
        params[param] = [
            None if r[i] is None else convert(r[i]) if convert is not None else r[i] for r in rows
        ]
    return casts, params


def add_parts(batch: Batch, plan: Plan, prefix: str) -> list[tuple[str, str, int]]:
    """Add ``plan``'s parts to ``batch`` (every part reads its guard), named and bound
    under ``prefix``; the checks of its conditional parts for ``check``."""
    checks: list[tuple[str, str, int]] = []
    for table, n in plan.made.items():
        # How many ids is in the text, not a parameter: with a parameter the generic plan
        # of a prepared statement counts on 1,000 rows, costs more than a custom one, and
        # PostgreSQL then plans the receipt's statement anew on every run (+0.8 ms).
        batch.add(
            f"{prefix}_ids_{table}",
            f"""  SELECT g.ord, nextval(pg_get_serial_sequence('{table}', 'id')) AS id
  FROM {{guard}}, generate_series(1, {int(n)}) AS g(ord)""",  # noqa: S608 - only the model's names and a count in the text
            {},
        )
    for i, part in enumerate(plan.parts):
        name = f"{prefix}{i}"
        if isinstance(part, Insert):
            checks += _add_insert(batch, part, name, prefix)
        elif isinstance(part, AddTo):
            keys = list(part.deltas)
            casts, params = _arrays(
                part.table,
                [part.key, *part.columns],
                [[k, *part.deltas[k]] for k in keys],
                name,
            )
            sets = ", ".join(f"{c} = a.{c} + d.{c}" for c in part.columns)
            sets += _set_on_update(part.table, part.columns, name, params)
            batch.add(
                name,
                f"""  UPDATE {part.table.name} AS a SET {sets}
  FROM {{guard}}, unnest({", ".join(casts)}) AS d({", ".join([part.key, *part.columns])})
  WHERE a.{part.key} = d.{part.key}""",  # noqa: S608 - only the model's names in the text
                params,
            )
        elif isinstance(part, UpdateIfUnchanged):
            expected = list(part.rows[0][1])
            values = list(part.rows[0][2])
            cols = [part.key, *expected, *values]
            aliases = ["k", *(f"e_{c}" for c in expected), *(f"v_{c}" for c in values)]
            rows = [
                [k, *(e[c] for c in expected), *(v[c] for c in values)] for k, e, v in part.rows
            ]
            casts = []
            params = {}
            for col, alias, column in zip(cols, aliases, zip(*rows, strict=True), strict=True):
                c, p = _arrays(part.table, [col], [[x] for x in column], f"{name}_{alias}")
                casts += c
                params |= p
            sets = ", ".join(f"{c} = {_value(part.table, c, f'd.v_{c}')}" for c in values)
            sets += _set_on_update(part.table, values, name, params)
            same = " AND ".join(
                [f"a.{part.key} = d.k", *(f"a.{c} IS NOT DISTINCT FROM d.e_{c}" for c in expected)]
            )
            batch.add(
                name,
                f"""  UPDATE {part.table.name} AS a SET {sets}
  FROM {{guard}}, unnest({", ".join(casts)}) AS d({", ".join(aliases)})
  WHERE {same}
  RETURNING 1""",  # noqa: S608
                params,
            )
            batch.output(f"{name}_taken", f"(SELECT count(*) FROM {name})")  # noqa: S608
            checks.append((f"{name}_taken", part.name, len(part.rows)))
        elif isinstance(part, UpsertAdd):
            checks += _add_upsert(batch, part, name)
    return checks


def _add_upsert(batch: Batch, part: UpsertAdd, name: str) -> list[tuple[str, str, int]]:
    rows = _complete(part.table, part.rows)
    names = list(rows[0])
    casts, params = _arrays(part.table, names, [[r[c] for c in names] for r in rows], name)
    t = part.table.name
    adds = ", ".join(f"{c} = {t}.{c} + EXCLUDED.{c}" for c in part.add)
    adds += "".join(
        f", {c} = EXCLUDED.{c}"
        for c in names
        if c not in part.add and c not in part.conflict and part.table.c[c].onupdate is not None
    )
    if part.limits is None:
        batch.add(
            name,
            f"""  INSERT INTO {t} ({", ".join(names)})
  SELECT {", ".join(_value(part.table, c, f"x.{c}") for c in names)}
  FROM {{guard}}, unnest({", ".join(casts)}) AS x({", ".join(names)})
  ON CONFLICT ({", ".join(part.conflict)}) DO UPDATE SET {adds}""",  # noqa: S608
            params,
        )
        return []
    # One column added within a limit per row, the row found again by its one-column key
    # (the limit is not a column EXCLUDED carries).
    (column,) = part.add
    (key,) = part.conflict
    limit_type, convert = _array_type(part.table.c[column])
    params[f"{name}_limit"] = [
        None if v is None else convert(v) if convert else v for v in part.limits
    ]
    limit = f"CAST(:{name}_limit AS {limit_type}[])"
    batch.add(
        name,
        f"""  INSERT INTO {t} ({", ".join(names)})
  SELECT {", ".join(_value(part.table, c, f"x.{c}") for c in names)}
  FROM {{guard}}, unnest({", ".join(casts)}, {limit}) AS x({", ".join(names)}, lim)
  WHERE x.lim IS NULL OR x.{column} <= x.lim
  ON CONFLICT ({key}) DO UPDATE SET {adds}
  WHERE {t}.{column} + EXCLUDED.{column} <= COALESCE(
    (SELECT z.lim FROM unnest(CAST(:{name}_{key} AS {_array_type(part.table.c[key])[0]}[]),
                              {limit}) AS z(k, lim)
     WHERE z.k = {t}.{key}),
    {t}.{column} + EXCLUDED.{column})
  RETURNING 1""",  # noqa: S608 - only the model's names in the text
        params,
    )
    batch.output(f"{name}_taken", f"(SELECT count(*) FROM {name})")  # noqa: S608
    return [(f"{name}_taken", part.name, len(rows))]


def _set_on_update(table: Table, setting: Sequence[str], name: str, params: dict[str, Any]) -> str:
    """``, column = :param`` for each ``onupdate`` column (bound into ``params``)."""
    out = ""
    for c, v in _on_update(table, setting).items():
        params[f"{name}_set_{c}"] = v
        out += f", {c} = CAST(:{name}_set_{c} AS {_array_type(table.c[c])[0]})"
    return out


def _value(table: Table, column: str, ref: str) -> str:
    """``ref`` (the value of ``column`` unnested) as the column takes it (JSON travels as
    text: ``_array_type``)."""
    if _column(table, column)[2]:
        return f"CAST({ref} AS json)"
    return ref


def _add_insert(batch: Batch, part: Insert, name: str, prefix: str) -> list[tuple[str, str, int]]:
    part = Insert(part.table, _complete(part.table, part.rows), part.conflict, part.name)
    names = list(part.rows[0])
    one = part.rows[0]
    if len(part.rows) == 1 and not any(isinstance(v, Ref | list) for v in one.values()):
        # one row (a receipt): its values bound one by one, typed by their columns
        sql, binds, types = _one_row(part.table, tuple(names), name)
        params = {b: one[c] for c, b in zip(names, binds, strict=True)}
        return _insert_part(batch, part, name, sql, params, types)
    refs: dict[str, str] = {}  # column -> the table its refs name
    for r in part.rows:
        for c in names:
            ref = r[c]
            if isinstance(ref, Ref) and refs.setdefault(c, ref.table) != ref.table:
                raise ValueError(f"{part.table.name}.{c} names ids of two tables")
    plain = [[None if isinstance(r[c], Ref) else r[c] for c in names] for r in part.rows]
    casts, params = _arrays(part.table, names, plain, name)
    aliases = list(names)
    exprs = [_value(part.table, c, f"x.{c}") for c in names]
    for c, table in refs.items():
        param = f"{name}_{c}_ref"
        casts.append(f"CAST(:{param} AS integer[])")
        params[param] = [r[c].index + 1 if isinstance(r[c], Ref) else None for r in part.rows]
        aliases.append(f"{c}_ref")
        made = f"SELECT i.id FROM {prefix}_ids_{table} AS i WHERE i.ord = x.{c}_ref"  # noqa: S608
        exprs[names.index(c)] = f"COALESCE(x.{c}, ({made}))"
    sql = f"""  INSERT INTO {part.table.name} ({", ".join(names)})
  SELECT {", ".join(exprs)}
  FROM {{guard}}, unnest({", ".join(casts)}) AS x({", ".join(aliases)})"""  # noqa: S608
    return _insert_part(batch, part, name, sql, params, None)


@functools.cache
def _one_row(
    table: Table, names: tuple[str, ...], name: str
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The text of a one-row insert of ``names`` into ``table`` as part ``name``, its bind
    names and their types (once per shape)."""
    binds = tuple(f"{name}_{c}" for c in names)
    sql = f"""  INSERT INTO {table.name} ({", ".join(names)})
  SELECT {", ".join(f":{b}" for b in binds)} FROM {{guard}}"""  # noqa: S608
    return sql, binds, {b: table.c[c].type for c, b in zip(names, binds, strict=True)}


def _insert_part(
    batch: Batch,
    part: Insert,
    name: str,
    sql: str,
    params: dict[str, Any],
    types: dict[str, Any] | None,
) -> list[tuple[str, str, int]]:
    if not part.conflict:
        batch.add(name, sql, params, types)
        return []
    conflict = ", ".join(part.conflict)
    batch.add(name, f"{sql}\n  ON CONFLICT ({conflict}) DO NOTHING RETURNING 1", params, types)
    batch.output(f"{name}_taken", f"(SELECT count(*) FROM {name})")  # noqa: S608
    return [(f"{name}_taken", part.name, len(part.rows))]


# ---------------------------------------------------------------------------- SQLite


def _write_one_by_one(session: Session, plan: Plan) -> None:
    conn = session.connection()
    made: dict[Ref, Any] = {}

    def value(v: Any) -> Any:
        return made[v] if isinstance(v, Ref) else v

    for part in plan.parts:
        table = part.table
        if isinstance(part, Insert) and part.conflict:
            new = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(part.conflict))
            for r in _complete(table, part.rows):
                row = {c: value(v) for c, v in r.items()}
                if conn.execute(new.returning(*table.primary_key.columns), row).first() is None:
                    raise Contended(part.name)
        elif isinstance(part, Insert):
            rest = []
            for r in _complete(table, part.rows):
                own = r.get("id")
                row = {c: value(v) for c, v in r.items() if not (c == "id" and isinstance(v, Ref))}
                if isinstance(own, Ref):  # an id others name: the table makes it, one by one
                    made[own] = conn.execute(insert(table).returning(table.c.id), row).scalar_one()
                else:
                    rest.append(row)
            if rest:
                conn.execute(insert(table), rest)
        elif isinstance(part, AddTo):
            statement = (
                update(table)
                .where(table.c[part.key] == bindparam("k"))
                .values(
                    {
                        c: table.c[c] + bindparam(f"d_{c}", type_=table.c[c].type)
                        for c in part.columns
                    }
                )
            )
            for k, deltas in part.deltas.items():
                conn.execute(
                    statement,
                    {"k": k, **{f"d_{c}": d for c, d in zip(part.columns, deltas, strict=True)}},
                )
        elif isinstance(part, UpdateIfUnchanged):
            for k, expected, values in part.rows:
                taken = conn.execute(
                    update(table)
                    .where(
                        and_(
                            table.c[part.key] == k,
                            *(table.c[c].is_not_distinct_from(v) for c, v in expected.items()),
                        )
                    )
                    .values(values)
                ).rowcount
                if taken < 1:
                    raise Contended(part.name)
        else:
            _upsert_one_by_one(conn, part)


def _upsert_one_by_one(conn: Any, part: UpsertAdd) -> None:
    table = part.table
    rows = _complete(table, part.rows)
    upsert = sqlite.insert(table)
    sets: dict[str, Any] = {c: table.c[c] + upsert.excluded[c] for c in part.add}
    sets |= {
        c: upsert.excluded[c]
        for c in rows[0]
        if c not in part.add and c not in part.conflict and table.c[c].onupdate is not None
    }
    if part.limits is None:
        conn.execute(
            upsert.on_conflict_do_update(index_elements=list(part.conflict), set_=sets), rows
        )
        return
    (column,) = part.add
    for row, limit in zip(rows, part.limits, strict=True):
        if limit is not None and row[column] > limit:
            raise Contended(part.name)
        statement = upsert.on_conflict_do_update(
            index_elements=list(part.conflict),
            set_=sets,
            where=None
            if limit is None
            else table.c[column] + upsert.excluded[column] <= literal(limit, table.c[column].type),
        ).returning(*table.primary_key.columns)
        if conn.execute(statement, row).first() is None:
            raise Contended(part.name)
