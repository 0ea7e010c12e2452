"""CSV in, CSV out: read a table of patients, score each row on its own, export results safely.

One bad row gets a message naming the row and the reason and never stops the others. Exported cells
that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first) are
neutralised with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import InvalidPatientDataError
from core.exports import csv_text
from core.i18n import _
from core.tabular.predictor import RiskPredictor, RiskResult
from core.tabular.schema import Schema

EXTRA_MARK = "__extra__"
# Bounds a CSV must fit before it is read: a table this size is already a study cohort, not a clinic's batch.
MAX_CSV_BYTES = 64 * 1024**2
MAX_ROWS = 100_000
OTHER_SEPARATORS = (";", "\t")  # spreadsheets in many locales save "CSV" with these


def _separator(text: str) -> str:
    """',' unless the header row has none and uses ';' or a tab instead (then that one)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    if "," in header:
        return ","
    return next((sep for sep in OTHER_SEPARATORS if sep in header), ",")


def _open_bytes(source: Path | bytes | str, label: str) -> BinaryIO:
    """A binary stream over the CSV, refusing anything over MAX_CSV_BYTES before reading any of it."""
    if isinstance(source, Path):
        if source.is_dir():
            raise InvalidPatientDataError(_("{label}: is a folder, not a CSV file.").format(label=label))
        size = source.stat().st_size
        if size > MAX_CSV_BYTES:
            raise InvalidPatientDataError(
                _(
                    "{label}: is {size_mb:.0f} MB; LucidDx reads CSV files up to {limit_mb} MB. Split it into smaller "
                    "files."
                ).format(label=label, size_mb=size / 1024**2, limit_mb=MAX_CSV_BYTES // 1024**2)
            )
        return source.open("rb")
    data = source.encode() if isinstance(source, str) else source
    if len(data) > MAX_CSV_BYTES:
        raise InvalidPatientDataError(
            _(
                "{label}: is {size_mb:.0f} MB; LucidDx reads CSV files up to {limit_mb} MB. Split it into smaller "
                "files."
            ).format(label=label, size_mb=len(data) / 1024**2, limit_mb=MAX_CSV_BYTES // 1024**2)
        )
    return io.BytesIO(data)


def _too_many_rows(label: str) -> InvalidPatientDataError:
    return InvalidPatientDataError(
        _(
            "{label}: has more than {max_rows:,} rows; LucidDx scores up to {max_rows:,} patients per file "
            "and stopped reading there. Split it into smaller files."
        ).format(label=label, max_rows=MAX_ROWS)
    )


def _stream_rows(handle: BinaryIO, label: str) -> list[list[str]]:
    """Decode and parse the CSV as it is read, stopping (and refusing) as soon as it passes MAX_ROWS.

    Millions of one-character rows would otherwise cost gigabytes as Python lists before the count
    could refuse them; here at most MAX_ROWS + 1 rows are ever held.
    """
    head = handle.read(4096)
    if b"\x00" in head:
        raise InvalidPatientDataError(
            _("{label}: is a binary file, not a CSV. Export it as 'CSV UTF-8'.").format(label=label)
        )
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    header = ""
    while not header.strip():
        header = text.readline()
        if not header:
            break
    text.seek(0)
    table: list[list[str]] = []
    for row in csv.reader(text, delimiter=_separator(header)):
        if len(table) > MAX_ROWS:  # header + MAX_ROWS patients already held: this one is past the cap
            raise _too_many_rows(label)
        table.append(row)
    return table


def read_table(source: Path | bytes | str, name: str = "") -> list[list[str]]:
    """Any CSV (path, bytes or text) -> its rows of cells, blank leading/trailing lines dropped.

    Raises InvalidPatientDataError naming the file when it is unreadable, binary, empty, or longer than
    MAX_ROWS data rows (found while reading: the rest of the file is never parsed).
    """
    label = name or (source.name if isinstance(source, Path) else "the uploaded CSV")
    try:
        with _open_bytes(source, label) as handle:
            table = _stream_rows(handle, label)
    except FileNotFoundError as exc:
        raise InvalidPatientDataError(_("{label}: file not found.").format(label=label)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPatientDataError(
            _(
                "{label}: cannot be read as a UTF-8 CSV file ({error_type}). Export it from the spreadsheet as "
                "'CSV UTF-8'."
            ).format(label=label, error_type=exc.__class__.__name__)
        ) from exc
    except csv.Error as exc:
        raise InvalidPatientDataError(_("{label}: is not a valid CSV ({exc}).").format(label=label, exc=exc)) from exc
    while table and not any(cell.strip() for cell in table[0]):
        table.pop(0)
    while len(table) > 1 and not any(cell.strip() for cell in table[-1]):
        table.pop()  # spreadsheets often end files with blank lines; they are not patients
    if not table:
        raise InvalidPatientDataError(
            _("{label}: is empty; it needs a header row naming the columns.").format(label=label)
        )
    return table


def read_patient_csv(
    source: Path | bytes | str, schema: Schema, name: str = ""
) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV into canonical column names and rows of raw strings.

    Column names match the schema's features case-insensitively; extra columns are kept (ignored by scoring).
    Raises InvalidPatientDataError for an unreadable file or missing feature columns.
    """
    label = name or (source.name if isinstance(source, Path) else "the uploaded CSV")
    table = read_table(source, label)
    canonical = {n.lower(): n for n in [*schema.names, schema.target] if n}
    header = [canonical.get(h.strip().lower(), h.strip()) for h in table[0]]
    missing = [n for n in schema.names if n not in header]
    if missing:
        raise InvalidPatientDataError(
            _(
                "{label}: missing column(s) {missing}. The header must name {columns} (extra columns are ignored)."
            ).format(label=label, missing=", ".join(missing), columns=", ".join(schema.names))
        )
    rows = []
    for raw in table[1:]:
        padded = raw + [""] * (len(header) - len(raw))
        rows.append(
            {h: padded[k] for k, h in enumerate(header)} | ({EXTRA_MARK: "1"} if len(raw) > len(header) else {})
        )
    return header, rows


def _row_problem(i: int, row: Mapping[str, str]) -> str | None:
    if EXTRA_MARK in row:
        return _("row {row}: has more cells than the header has columns.").format(row=i + 1)
    if not any(str(v).strip() for v in row.values()):
        return _("row {row}: is empty.").format(row=i + 1)
    return None


def score_rows(rows: Sequence[Mapping[str, str]], predictor: RiskPredictor) -> list[dict[str, Any]]:
    """Score raw CSV rows: one CLI.md result dict per row (``row`` is the 1-based data row number)."""
    results: list[dict[str, Any] | None] = [None] * len(rows)
    good: list[tuple[int, dict[str, Any], list[str]]] = []
    for i, row in enumerate(rows):
        problem = _row_problem(i, row)
        if problem is None:
            clean, issues = predictor.schema.check_patient(row, from_csv=True)
            errors = [x.message for x in issues if x.severity == "error"]
            problem = _("row {row}: {errors}").format(row=i + 1, errors=" ".join(errors)) if errors else None
        if problem is not None:
            results[i] = {"row": i + 1, "ok": False, "error": problem}
        else:
            good.append((i, clean, [x.message for x in issues]))
    scored = predictor.predict([g[1] for g in good], [g[2] for g in good])
    for (i, _clean, _warnings), result in zip(good, scored):
        results[i] = row_result(i + 1, result)
    return [r for r in results if r is not None]


def row_result(row: int, result: RiskResult) -> dict[str, Any]:
    """One scored patient as the CLI.md ``risk`` object (``row`` 1-based), with our extra fields."""
    return {
        "row": row,
        "ok": True,
        "error": None,
        "model": result.model,
        "risk": result.risk,
        "explanation": result.explanation(),
        "risk_interval": list(result.risk_interval),
        "threshold": result.threshold,
        "above_threshold": result.above_threshold,
        "warnings": result.warnings,
    }


def batch_table(
    results: Sequence[Mapping[str, Any]], top: int = 3, model: str | None = None, threshold: float | None = None
) -> list[dict[str, Any]]:
    """Flat rows for a table/CSV: row, ok, model, threshold, risk, above threshold, top contributions, error,
    shap_<feature>. Every row names the model version and threshold that scored it (``model`` and
    ``threshold`` fill them for rows that could not be scored)."""
    table = []
    for r in results:
        entry: dict[str, Any] = {
            "row": r["row"],
            "ok": r["ok"],
            "model": r.get("model") or model,
            "threshold": r.get("threshold", threshold),
            "risk": None,
            "above_threshold": None,
            "top_contributions": "",
            "error": r.get("error") or "",
        }
        if r["ok"]:
            ranked = sorted(r["explanation"]["contributions"].items(), key=lambda kv: -abs(kv[1]))[:top]
            entry.update(
                risk=round(r["risk"], 4),
                above_threshold=r["above_threshold"],
                top_contributions="; ".join(f"{k} {v:+.2f}" for k, v in ranked),
            )
            for k, v in r["explanation"]["contributions"].items():
                entry[f"shap_{k}"] = round(v, 6)
        table.append(entry)
    return table


def batch_csv(
    results: Sequence[Mapping[str, Any]],
    feature_names: Sequence[str],
    model: str | None = None,
    threshold: float | None = None,
) -> str:
    """The batch table as CSV text (log-odds SHAP columns for every feature), formula-injection safe; every row
    carries the model version and the threshold (``model``/``threshold`` for rows that could not be scored)."""
    rows = batch_table(results, model=model, threshold=threshold)
    columns = [
        "row",
        "ok",
        "model",
        "threshold",
        "risk",
        "above_threshold",
        "top_contributions",
        "error",
        *[f"shap_{n}" for n in feature_names],
    ]
    return csv_text(columns, rows)
