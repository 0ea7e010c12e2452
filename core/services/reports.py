"""The case-report verb every front end shares: diagnose and explain films, then lay them out as a PDF.

``python -m core report`` and ``POST /v1/report`` call :func:`case_report`; the layout lives in
``core.reports.pdf``, which only draws what it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import i18n
from core.errors import ReportError, UnsupportedImageError
from core.i18n import _
from core.reports import FilmPage, render
from core.services import catalog, imaging
from core.services.results import prediction_json

OVERLAY_OPACITY = 0.45
LANGS = {"en": "en", "zh": "zh_CN", "zh_CN": "zh_CN"}


@dataclass
class CaseReport:
    """The PDF, the model that made it, and the films that could not be read (predict-contract objects)."""

    pdf: bytes
    model: str
    failed: list[dict[str, Any]] = field(default_factory=list)


def film_page(result: imaging.FileResult, classifier: Any, method: str, target: str | None = None) -> FilmPage:
    """One diagnosed file's page: the film and its overlay (of class ``target``, None = the model's call) at
    display size (uint8), and its prediction."""
    explanation = imaging.explain(result, classifier, method, target)
    film = imaging.display_image(result.image.pixels)
    overlay = imaging.overlay(film.astype("float32") / 255.0, explanation, OVERLAY_OPACITY)
    return FilmPage(
        name=result.name,
        film=film,
        overlay=overlay,
        prediction=result.prediction.as_dict(),
        method=explanation.method,
        target=explanation.class_name,
    )


def case_report(
    sources: list[tuple[bytes | Path, str]],
    model: str | None = None,
    method: str = "gradcam",
    lang: str | None = None,
    target: str | None = None,
) -> CaseReport:
    """Diagnose each ``(bytes or path, name)``, explain class ``target`` (None = the model's call) with
    ``method``, render the PDF: the report shows the overlay the clinician chose on screen.

    Raises:
        ReportError: an unknown language.
        UnsupportedImageError: no film could be read (every file's reason is in the message).
        InvalidExplanationError: an unknown method.
    """
    if lang is not None and lang not in LANGS:
        raise ReportError(
            _("Unknown report language {lang!r}: choose one of {choices}.").format(lang=lang, choices=", ".join(LANGS))
        )
    classifier = imaging.load_model(model)
    summary = catalog.card_summary(catalog.model_card(classifier.ref.spec))
    pages, failed = [], []
    for source, name in sources:
        result = imaging.diagnose(source, name, classifier)
        if not result.ok:
            failed.append(prediction_json(name, result))
            continue
        pages.append(film_page(result, classifier, method, target))
    if not pages:
        raise UnsupportedImageError(" ".join(item["error"] for item in failed) or _("No film was given."))
    pdf = render(pages, summary, LANGS.get(lang or "", None) or i18n.language())
    return CaseReport(pdf=pdf, model=classifier.ref.spec, failed=failed)
