"""Training a risk model from an uploaded table, as the dashboard does it: read, report, confirm, train as a job.

The upload stays in the session's memory; only the columns training will use (never identifiers, dates or
free text) are written, under a neutral name, into the job's folder, and removed when the job ends.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import InvalidPatientDataError, LucidDxError
from core.i18n import _
from core.jobs import risk as risk_jobs
from core.services import jobs
from core.services.audit import Who, authorize, record
from core.tabular import batch
from core.tabular.overrides import LEFT_OUT, from_review
from core.tabular.report import TableReport, review_rows, table_report

__all__ = [
    "MAX_CSV_BYTES",
    "TableReport",
    "check_upload_size",
    "data_report",
    "list_jobs",
    "read_table",
    "review_rows",
    "start_job",
]

MAX_CSV_BYTES = batch.MAX_CSV_BYTES


def check_upload_size(size: int) -> None:
    """Refuse an upload over the CSV cap before its bytes are read. Raises InvalidPatientDataError."""
    if size > MAX_CSV_BYTES:
        raise InvalidPatientDataError(
            _(
                "The table is {size:.0f} MB; LucidDx reads CSV files up to {limit} MB. Split it into smaller files."
            ).format(size=size / 1024**2, limit=MAX_CSV_BYTES // 1024**2)
        )


def read_table(data: bytes) -> list[list[str]]:
    """An uploaded CSV's rows (header first), without its file name. Raises InvalidPatientDataError when unreadable."""
    check_upload_size(len(data))
    table = batch.read_table(data, _("the uploaded table"))
    if len(table) < 2:
        raise InvalidPatientDataError(_("The uploaded table has a header but no rows."))
    return table


def outcome_values(table: Sequence[Sequence[str]], column: str) -> list[str]:
    """The distinct values of one column (the outcome's choices), in the order the training code sorts them."""
    from core.tabular.columns import level_key
    from core.tabular.schema import level_text

    k = [h.strip() for h in table[0]].index(column)
    values = {level_text(r[k]) for r in table[1:] if k < len(r)}
    return sorted((v for v in values if v is not None), key=level_key)


def data_report(
    table: Sequence[Sequence[str]], target: str, positive: Sequence[str], negative: Sequence[str] | None = None
) -> TableReport:
    """The data report for this outcome (see ``core.tabular.report``). Raises InvalidDatasetError for a bad outcome."""
    return table_report(table, target, list(positive), list(negative) if negative else None)


def _training_csv(table: Sequence[Sequence[str]], keep: Sequence[str]) -> bytes:
    header = [h.strip() for h in table[0]]
    index = [header.index(c) for c in keep]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(keep)
    for row in table[1:]:
        writer.writerow([row[k] if k < len(row) else "" for k in index])
    return out.getvalue().encode()


def start_job(
    table: Sequence[Sequence[str]],
    report: TableReport,
    positive: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    name: str,
    folds: int = 10,
    negative: Sequence[str] | None = None,
    actor: Who | None = None,
) -> str:
    """Start training from the confirmed review ``rows``; returns the job id. The new version is not activated.

    Raises a LucidDxError for a bad name, folds, or an unreadable confirmation (a limit that is not a number).
    """
    authorize(actor, "train-risk")
    try:
        used = [r for r in rows if r.get("use")]
        removed = [
            *report.dropped,
            *({"column": str(r["column"]), "reason": LEFT_OUT} for r in rows if not r.get("use")),
        ]
        overrides = from_review(used, removed)
        request = risk_jobs.RiskJobRequest(
            name=name.strip(),
            target=report.target,
            positive=",".join(positive),
            negative=",".join(negative) if negative else None,
            folds=int(folds),
        )
        data = _training_csv(table, [report.target, *(str(r["column"]) for r in used)])
    except LucidDxError:
        record(actor, "train-risk", outcome="bad-input")
        raise
    return jobs.start(
        actor,
        request,
        action="train-risk",
        inputs={risk_jobs.TABLE_FILE: data, risk_jobs.OVERRIDES_FILE: json.dumps(overrides.to_json()).encode()},
    )


def list_jobs() -> list[dict[str, Any]]:
    """Risk training jobs, newest first."""
    return jobs.list_jobs("risk")
