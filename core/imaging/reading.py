"""One meaning per number: what a table, chart or export says about a diagnosed film.

Every view shows the probability of the model's POSITIVE class next to the threshold IN FORCE (the
adopted site threshold, else the stored one), rounded for reading, and the label they give; a
multi-class model shows its top class and that class's probability. A film unlike the training
films is "Not assessable": its numbers are kept, but no finding is read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.i18n import N_, _

if TYPE_CHECKING:
    from core.imaging.classifier import Prediction

NOT_ASSESSABLE = N_("Not assessable")
FILTERS = {"all": N_("All files"), "not_assessable": N_("Not assessable"), "errors": N_("Errors")}
"""Filter keys of the results table; a label's filter is ``label:<LABEL>``."""


@dataclass(frozen=True)
class Reading:
    """A prediction as a reader meets it.

    Attributes:
        label: the model's label at the threshold in force (the CLI's ``label``).
        score_class: the positive class (two-class model with a threshold) or the top class.
        probability: the probability of ``score_class``, in [0, 1], full precision.
        threshold: the threshold in force, or None (multi-class: the top class wins).
        threshold_source: "stored" or "site:<validation id>".
        assessable: False when the film is unlike the training films.
    """

    label: str
    score_class: str
    probability: float
    threshold: float | None
    threshold_source: str
    assessable: bool

    @property
    def finding(self) -> str:
        """The label, or "Not assessable" (untranslated: translate it where it is shown)."""
        return self.label if self.assessable else NOT_ASSESSABLE

    def rounded(self) -> tuple[str, str | None]:
        """(probability, threshold) as text with 2 decimals, 3 when 2 would make them look equal."""
        digits = 2
        if self.threshold is not None and round(self.probability, 2) == round(self.threshold, 2):
            digits = 3
        shown = f"{self.probability:.{digits}f}"
        return shown, None if self.threshold is None else f"{self.threshold:.{digits}f}"


def reading(prediction: "Prediction") -> Reading:
    """The Reading of one prediction (positive-class probability, or the top class's for multi-class)."""
    probabilities = prediction.probabilities
    binary = prediction.positive_class in probabilities and prediction.threshold is not None and len(probabilities) == 2
    score_class = prediction.positive_class if binary else max(probabilities, key=probabilities.__getitem__)
    assert score_class is not None
    return Reading(
        label=prediction.label, score_class=score_class, probability=float(probabilities[score_class]),
        threshold=prediction.threshold if binary else None, threshold_source=prediction.threshold_source,
        assessable=prediction.assessable,
    )


def reading_text(item: Reading) -> str:
    """The numbers as a sentence, the text alternative of every chart ("PNEUMONIA probability 0.38, ...")."""
    probability, threshold = item.rounded()
    finding = _(item.finding)
    if threshold is None:
        return _("Top class {cls}, probability {probability}: {finding}").format(
            cls=item.score_class, probability=probability, finding=finding)
    return _("{cls} probability {probability}, threshold {threshold}: {finding}").format(
        cls=item.score_class, probability=probability, threshold=threshold, finding=finding)


def results_table(results: list[Any], model: str | None = None,
                  in_force: tuple[float | None, str] | None = None) -> list[dict[str, Any]]:
    """One row per file (``core.services.imaging.FileResult``s): its finding, the positive (or top) class's probability and the threshold in force.

    Numbers are rounded for reading (2 decimals). ``model`` and ``in_force`` ((threshold, source), see
    ``threshold_in_force``) fill the model and threshold of failed files too: every row names both.
    """
    in_force_threshold, source = in_force or (None, None)
    rows = []
    for item in results:
        row: dict[str, Any] = {"file": item.name, "label": None, "finding": None, "class": None, "probability": None,
                               "threshold": None if in_force_threshold is None else round(in_force_threshold, 2),
                               "threshold source": source, "assessable": None, "model": model,
                               "error": item.error or ""}
        if item.prediction is not None:
            said = reading(item.prediction)
            probability, threshold = said.rounded()
            row.update({"label": said.label, "finding": _(said.finding), "class": said.score_class,
                        "probability": float(probability), "threshold": None if threshold is None else float(threshold),
                        "threshold source": said.threshold_source, "assessable": said.assessable,
                        "model": item.prediction.model})
        rows.append(row)
    return rows


def filter_choices(rows: list[dict[str, Any]]) -> list[str]:
    """The filters that make sense for these rows: all, one per label found, not assessable, errors."""
    labels = sorted({row["label"] for row in rows if row["label"] and row["assessable"]})
    return ["all", *(f"label:{label}" for label in labels), "not_assessable", "errors"]


def filter_name(choice: str) -> str:
    """A filter key as a reader reads it, translated."""
    if choice.startswith("label:"):
        return _("Label {label}").format(label=choice.split(":", 1)[1])
    return _(FILTERS[choice])


def filter_rows(rows: list[dict[str, Any]], choice: str) -> list[dict[str, Any]]:
    """The rows a filter keeps: "all", "label:<LABEL>" (assessable films with that label), "not_assessable", "errors"."""
    if choice == "all":
        return list(rows)
    if choice == "errors":
        return [row for row in rows if row["error"]]
    if choice == "not_assessable":
        return [row for row in rows if row["assessable"] is False]
    if choice.startswith("label:"):
        wanted = choice.split(":", 1)[1]
        return [row for row in rows if row["label"] == wanted and row["assessable"]]
    raise ValueError(f"unknown filter {choice!r}; expected all, label:<LABEL>, not_assessable or errors")
