"""The PDF case report: one A4 page per film (film, overlay, result against the threshold, the model
card's key numbers and intended use, the decision-support disclaimer), built with reportlab.

Every string a reader sees goes through ``_`` and is rendered in the language in force
(``core.i18n.using``). Chinese text is set in Noto Sans CJK SC, subset to the report's characters and
embedded (``core.reports.cjk_font``), so any reader shows it as written.
"""

from __future__ import annotations

import io
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core import i18n
from core.i18n import _
from core.imaging.reading import reading_of
from core.models.cards import headline_lines, threshold_source_text
from core.reports.cjk_font import register_for

LATIN_FONTS = ("Helvetica", "Helvetica-Bold")
IMAGE_WIDTH = 82 * mm
Fonts = tuple[str, str]  # (regular, bold) names registered with reportlab


@dataclass
class FilmPage:
    """One film's page. ``film``: (H, W) or (H, W, 3) uint8; ``overlay``: (H, W, 3) uint8;
    ``prediction``: the predict contract's fields (label, probabilities, threshold, positive_class,
    out_of_distribution, model)."""

    name: str
    film: np.ndarray
    overlay: np.ndarray
    prediction: dict[str, Any]
    method: str
    target: str


def _styles(fonts: Fonts) -> dict[str, ParagraphStyle]:
    regular, bold = fonts
    wrap = None if fonts == LATIN_FONTS else "CJK"
    base = {"fontName": regular, "fontSize": 9.5, "leading": 13, "wordWrap": wrap}
    return {
        "title": ParagraphStyle("title", **(base | {"fontName": bold, "fontSize": 16, "leading": 20})),
        "heading": ParagraphStyle(
            "heading", **(base | {"fontName": bold, "fontSize": 11.5, "leading": 16, "spaceBefore": 6})
        ),
        "body": ParagraphStyle("body", **base),
        "small": ParagraphStyle("small", **(base | {"fontSize": 8, "leading": 10, "textColor": colors.grey})),
        "result": ParagraphStyle("result", **(base | {"fontName": bold, "fontSize": 13, "leading": 18})),
        "warning": ParagraphStyle("warning", **(base | {"fontName": bold, "textColor": colors.HexColor("#9a3412")})),
    }


def _image(pixels: np.ndarray, width: float = IMAGE_WIDTH) -> Image:
    """A PNG flowable of ``pixels`` (uint8) scaled to ``width`` points, aspect kept."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    buffer.seek(0)
    height, image_width = pixels.shape[:2]
    return Image(buffer, width=width, height=width * height / image_width)


def _number(value: float | None) -> str:
    return _("n/a") if value is None else f"{value:.3f}"


def result_lines(prediction: dict[str, Any], headline: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """(the headline, the lines under it) for a prediction against its threshold, rounded as the screen rounds
    them (``core.imaging.reading``). A film that is not assessable gets no label and no side of the threshold.

    ``headline``: the card's figures that apply here (``card_summary``), naming where the threshold comes from.
    """
    said = reading_of(prediction)
    probability, threshold = said.rounded()
    if said.assessable:
        headline_text = _("Result: {label}").format(label=said.label)
    else:
        headline_text = _("Not assessable: this film is unlike the images the model was trained on.")
    if not said.assessable:
        side = _("unreliable: the film is not assessable")
    elif threshold is not None:
        side = _("above the threshold") if said.probability >= said.threshold else _("below the threshold")
    else:
        side = _("the top class")
    lines = [_("Probability of {positive}: {p} ({side})").format(positive=said.score_class, p=probability, side=side)]
    if threshold is not None:
        source = threshold_source_text({**(headline or {}), "threshold_source": said.threshold_source})
        lines.append(_("Threshold: {threshold}, {source}").format(threshold=threshold, source=source))
    lines.append(_("Label: {label}").format(label=said.label) if said.assessable else _("Label: none (not assessable)"))
    return headline_text, lines


def _metric_rows(summary: dict[str, Any]) -> list[list[str]]:
    names = {"auc": _("AUC"), "sensitivity": _("Sensitivity"), "specificity": _("Specificity")}
    rows = [[_("Metric"), _("Value"), _("95% confidence interval")]]
    for key, label in names.items():
        metric = summary.get("metrics", {}).get(key)
        if not metric:
            continue
        low, high = (metric.get("ci95") or [None, None])[:2]
        rows.append([label, _number(metric.get("value")), f"{_number(low)} - {_number(high)}"])
    return rows


def _card_section(summary: dict[str, Any], styles: dict[str, ParagraphStyle], fonts: Fonts) -> list:
    table = _table(_metric_rows(summary), hAlign="LEFT", colWidths=[45 * mm, 30 * mm, 50 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), fonts[0]),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f5f9")),
            ]
        )
    )
    story: list = [Paragraph(escape(_("Model card: {model}").format(model=summary["model"])), styles["heading"])]
    headline = summary.get("headline") or {}
    if headline.get("scope") == "site":  # the figures that apply here lead; the internal ones follow, labelled
        said, caution = headline_lines(headline)
        story += [Paragraph(escape(said), styles["body"])]
        story += [Paragraph(escape(caution), styles["small"])] if caution else []
    story += [
        Paragraph(escape(_("Internal validation (the developer's data)")), styles["body"]),
        table,
        Paragraph(escape(_("Intended use")), styles["heading"]),
    ]
    # The intended use is the model's stored text: a bundled model's is in the catalog.
    story += [
        Paragraph("- " + escape(i18n.translated(use) or ""), styles["body"]) for use in summary.get("intended_use", [])
    ]
    return story


def _film_story(page: FilmPage, index: int, total: int, summary: dict[str, Any], fonts: Fonts) -> list:
    styles = _styles(fonts)
    headline, lines = result_lines(page.prediction, summary.get("headline"))
    caption = _("Overlay: {method}, class {target}").format(method=page.method, target=page.target)
    if page.prediction.get("out_of_distribution"):
        caption = _("Overlay: {method}, class {target} (not a finding: the film is not assessable)").format(
            method=page.method, target=page.target
        )
    images = _table(
        [
            [_image(page.film), _image(page.overlay)],
            [Paragraph(escape(_("Film")), styles["small"]), Paragraph(escape(caption), styles["small"])],
        ],
        hAlign="LEFT",
    )
    story = [
        Paragraph(escape(_("LucidDx case report")), styles["title"]),
        Paragraph(
            escape(_("Film {index} of {total}: {name}").format(index=index, total=total, name=page.name)),
            styles["body"],
        ),
        Paragraph(
            escape(
                _("Model {model}, generated {time} UTC").format(
                    model=page.prediction.get("model", summary["model"]),
                    time=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
                )
            ),
            styles["small"],
        ),
        Spacer(1, 4 * mm),
        images,
        Spacer(1, 3 * mm),
        Paragraph(escape(headline), styles["warning" if page.prediction.get("out_of_distribution") else "result"]),
    ]
    story += [Paragraph(escape(line), styles["body"]) for line in lines]
    return story + _card_section(summary, styles, fonts)


def _footer_text() -> str:
    return _("AI result, decision support only, not for diagnosis.")


def _footer(fonts: Fonts):
    regular, text = fonts[0], _footer_text()

    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(regular, 9)
        canvas.setFillColor(colors.HexColor("#9a3412"))
        canvas.drawString(doc.leftMargin, 12 * mm, text)
        canvas.drawRightString(A4[0] - doc.rightMargin, 12 * mm, str(doc.page))
        canvas.restoreState()

    return draw


def _story(pages: list[FilmPage], summary: dict[str, Any], fonts: Fonts) -> list:
    story: list = []
    for index, page in enumerate(pages, start=1):
        if index > 1:
            story.append(PageBreak())
        story += _film_story(page, index, len(pages), summary, fonts)
    return story


_CELLS: weakref.WeakKeyDictionary[Table, list] = weakref.WeakKeyDictionary()


def _table(rows: list, **style: Any) -> Table:
    """A reportlab Table that remembers its cells for :func:`_text_of` (reportlab keeps them only privately)."""
    table = Table(rows, **style)
    _CELLS[table] = rows
    return table


def _text_of(flowables: list) -> str:
    """Every character the flowables will draw (paragraph text, table cells, nested)."""
    parts: list[str] = []
    for item in flowables:
        if isinstance(item, Paragraph):
            parts.append(item.text)
        elif isinstance(item, Table):
            for row in _CELLS.get(item, []):
                parts += [
                    cell if isinstance(cell, str) else _text_of(cell if isinstance(cell, list) else [cell])
                    for cell in row
                ]
    return "".join(parts)


def _fonts_for(pages: list[FilmPage], summary: dict[str, Any], lang: str) -> Fonts:
    """Helvetica for English; for Chinese, the embedded CJK subset of exactly the text this report draws."""
    if not lang.startswith("zh"):
        return LATIN_FONTS
    draft = _story(pages, summary, LATIN_FONTS)  # laid out once only to learn its characters
    name = register_for(_text_of(draft) + _footer_text() + _("LucidDx case report"))
    return name, name


def render(pages: list[FilmPage], summary: dict[str, Any], lang: str | None = None) -> bytes:
    """The case report as PDF bytes, one page per film, in ``lang`` (None = the language in force).

    Args:
        pages: the films, in order (at least one).
        summary: ``core.services.catalog.card_summary`` of the model's card.
    """
    with i18n.using(lang or i18n.language()) as chosen:
        fonts = _fonts_for(pages, summary, chosen)
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=16 * mm,
            rightMargin=16 * mm,
            topMargin=14 * mm,
            bottomMargin=20 * mm,
            title=_("LucidDx case report"),
            author="LucidDx",
        )
        footer = _footer(fonts)
        doc.build(_story(pages, summary, fonts), onFirstPage=footer, onLaterPages=footer)
        return buffer.getvalue()
