"""Cursor pagination of the API's lists (``{"items": [...], "next_cursor": ...}``).

Lists go newest first by id; ids are UUIDv7, so time-ordered. A cursor is the id of the
last item of a page; the next page is the items with a smaller id. A query asks for one
row more than the page so that it knows whether there is a next page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kopilka.core.errors import field_error, validation_problem

T = TypeVar("T")


def after(cursor: str | None) -> uuid.UUID | None:
    """The id a cursor names, or None for the first page; 422 naming ``cursor`` (a query
    parameter) if it is not one."""
    if not cursor:
        return None
    try:
        return uuid.UUID(cursor)
    except ValueError as exc:
        raise validation_problem(
            [{**field_error("cursor", "not a cursor of this list"), "in": "query"}]
        ) from exc


# The largest id a table keyed by an integer can have: BIGINT on PostgreSQL, INTEGER on
# SQLite (both signed 64-bit). A bigger one is no id, and neither database can compare it.
MAX_INT_ID = 2**63 - 1


def after_number(cursor: str | None) -> int | None:
    """The integer id a cursor names (lists keyed by an integer, like a pool's codes), or
    None for the first page; 422 naming ``cursor`` if it is not one."""
    if not cursor:
        return None
    if cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_INT_ID:
        return int(cursor)
    raise validation_problem(
        [{**field_error("cursor", "not a cursor of this list"), "in": "query"}]
    )


def all_pages(fetch: Callable[[str | None], tuple[Sequence[T], str | None]]) -> list[T]:
    """Every item of a list, page after page: ``fetch(cursor)`` answers a page and the
    next cursor (None after the last page)."""
    out: list[T] = []
    cursor: str | None = None
    while True:
        items, cursor = fetch(cursor)
        out.extend(items)
        if cursor is None:
            return out


def page(
    rows: Sequence[T], limit: int, id_of: Callable[[T], Any] | None = None
) -> tuple[Sequence[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched with ``limit + 1``) and the next cursor
    (the id of the page's last row: ``row.id`` unless ``id_of`` says otherwise)."""
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], str(id_of(last) if id_of is not None else getattr(last, "id"))  # noqa: B009
    return rows, None
