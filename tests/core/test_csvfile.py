"""CSV for spreadsheets: a BOM, ';', CRLF, and text that would run as a formula
neutralised (numbers left as they are)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from kopilka.core.csvfile import cell, excel_csv


def test_text_that_a_spreadsheet_would_run_gets_an_apostrophe() -> None:
    # given text cells starting as formulas do, and numbers
    risky = ["=1+1", "+7 916", "-2", "@SUM(A1)", "\tx", "\rx"]
    # then each text gets a leading apostrophe; numbers, dates and None do not change
    assert [cell(v) for v in risky] == ["'=1+1", "'+7 916", "'-2", "'@SUM(A1)", "'\tx", "'\rx"]
    assert [cell(Decimal("-1.50")), cell(-3), cell(None), cell(dt.date(2026, 12, 7))] == [
        "-1.50",
        "-3",
        "",
        "2026-12-07",
    ]
    assert cell("Пул «Скидка»; 10%") == "Пул «Скидка»; 10%"


def test_tables_follow_one_another_with_an_empty_line() -> None:
    # when two tables are written, one with a field holding ';' and a quote
    data = excel_csv([[["a", "b"], [1, 'x;"y"']], [["c"], ["=cmd"]]])
    # then the file starts with the BOM, separates by ';', ends lines with CRLF, quotes
    assert data == '\ufeffa;b\r\n1;"x;""y"""\r\n\r\nc\r\n\'=cmd\r\n'.encode()
