"""Tables people open in a spreadsheet: every exported cell is safe from formula injection.

A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is run by Excel
and LibreOffice when the file is opened (OWASP "CSV injection"); it gets a leading apostrophe, which
spreadsheets show as text. Numbers stay numbers. The one writer of every export: risk batches, image
batches, archive scores, the audit log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """A cell safe to open in a spreadsheet: text starting like a formula gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of ``rows``, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _cells(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterable[list[Any]]:
    for row in rows:
        yield [neutralise("" if row.get(c) is None else row.get(c)) for c in columns]


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], lineterminator: str = "\r\n") -> str:
    """``rows`` as CSV text with a header, missing values blank, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([neutralise(c) for c in columns])
    writer.writerows(_cells(columns, rows))
    return out.getvalue()


def csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows (columns in first-seen order) as UTF-8 CSV with a BOM, so Excel reads accents and 中文."""
    return ("\ufeff" + csv_text(columns_of(rows), rows)).encode("utf-8")


def xlsx_bytes(rows: Sequence[Mapping[str, Any]], sheet: str = "results") -> bytes:
    """Rows as an Excel workbook (one sheet, a bold header row, frozen below it)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    columns = columns_of(rows)
    book = Workbook()
    page = book.active
    page.title = sheet[:31]
    page.append([neutralise(c) for c in columns])
    for cell in page[1]:
        cell.font = Font(bold=True)
    for row in rows:
        # openpyxl reads a str starting with "=" as a formula; neutralise has already defused those.
        page.append([neutralise(row.get(c)) for c in columns])
    page.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
