"""Tables out of the dashboard as CSV and Excel, safe to open in a spreadsheet.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
spreadsheet programs as a formula (CSV/formula injection, OWASP): a file named
``=HYPERLINK("x").png`` would become a live link. Such text is prefixed with a single quote, so it
stays text. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would run as a formula: then "'" + text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _cells(rows: list[dict[str, Any]], columns: list[str]) -> Iterable[list[Any]]:
    for row in rows:
        yield [safe_cell(row.get(column)) for column in columns]


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows (dicts; columns in first-seen order) as UTF-8 CSV with a BOM (Excel reads the accents)."""
    columns = _columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(column) for column in columns])
    writer.writerows(_cells(rows, columns))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict[str, Any]], sheet: str = "results") -> bytes:
    """Rows as an Excel workbook (one sheet, a bold header row, frozen below it)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    columns = _columns(rows)
    book = Workbook()
    page = book.active
    page.title = sheet[:31]
    page.append([safe_cell(column) for column in columns])
    for cell in page[1]:
        cell.font = Font(bold=True)
    for cells in _cells(rows, columns):
        # openpyxl reads a str starting with "=" as a formula; safe_cell has already defused those.
        page.append(cells)
    page.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
