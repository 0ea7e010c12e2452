"""Tables people open in a spreadsheet: every exported cell is safe from formula injection.

A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is run by Excel
and LibreOffice when the file is opened (OWASP "CSV injection"); it gets a leading apostrophe, which
spreadsheets show as text. Used by every export: risk batches, image batches, the audit log.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """A cell safe to open in a spreadsheet: text starting like a formula gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """``rows`` as CSV text with a header, missing values blank, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise("" if row.get(c) is None else row.get(c)) for c in columns])
    return out.getvalue()
