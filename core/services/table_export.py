"""Tables out of the dashboard as CSV and Excel, safe to open in a spreadsheet (``core.exports`` writes them)."""

from __future__ import annotations

from typing import Any

from core.exports import csv_bytes, xlsx_bytes


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows (dicts; columns in first-seen order) as UTF-8 CSV with a BOM (Excel reads the accents)."""
    return csv_bytes(rows)


def to_xlsx(rows: list[dict[str, Any]], sheet: str = "results") -> bytes:
    """Rows as an Excel workbook (one sheet, a bold header row, frozen below it)."""
    return xlsx_bytes(rows, sheet)
