"""CSV for spreadsheets: what Russian Excel opens as is (UTF-8 with a BOM, ``;`` between
fields, CRLF line ends), with text that a spreadsheet would run as a formula neutralised.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe (OWASP's "CSV injection"): a pool's or a reason's name typed by someone
cannot become a formula on an analyst's machine. Numbers are written as the API writes
them (a point before the decimals) and are never changed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | dt.date | None


def cell(value: Cell) -> str:
    """One field's text: numbers as they are, text neutralised, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def excel_csv(blocks: Iterable[Sequence[Sequence[Cell]]]) -> bytes:
    """Tables (each a header row and its rows) one after another, an empty line between
    two, as the bytes of one CSV file."""
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    for i, block in enumerate(blocks):
        if i:
            writer.writerow([])
        for row in block:
            writer.writerow([cell(v) for v in row])
    return buf.getvalue().encode("utf-8")
