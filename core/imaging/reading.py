"""One meaning per number: what a table, chart or export says about a diagnosed film.

Every view shows the probability of the model's POSITIVE class next to the threshold IN FORCE (the
adopted site threshold, else the stored one), rounded for reading, and the label they give; a
multi-class model shows its top class and that class's probability. A film unlike the training
films is "Not assessable": it carries no label anywhere (table, export, report), and its probability
moves to a column of its own, so sorting by probability never puts it among the labelled films.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.i18n import N_, _

if TYPE_CHECKING:
    from core.imaging.outputs import Prediction

NOT_ASSESSABLE = N_("Not assessable")
UNRELIABLE_PROBABILITY = "probability (not assessable)"
"""The results table's column for the probability of a film that is not assessable (never "probability")."""
FILTERS = {"all": N_("All files"), "not_assessable": N_("Not assessable"), "errors": N_("Errors")}
"""Filter keys of the results table; a label's filter is ``label:<LABEL>``."""


@dataclass(frozen=True)
class Reading:
    """A prediction as a reader meets it.

    Attributes:
        label: the model's label at the threshold in force (the CLI's ``label``); None when not assessable.
        score_class: the positive class (two-class model with a threshold) or the top class.
        probability: the probability of ``score_class``, in [0, 1], full precision.
        threshold: the threshold in force, or None (multi-class: the top class wins).
        threshold_source: "stored" or "site:<validation id>".
        assessable: False when the film is unlike the training films.
    """

    label: str | None
    score_class: str
    probability: float
    threshold: float | None
    threshold_source: str
    assessable: bool

    @property
    def finding(self) -> str:
        """The label, or "Not assessable" (untranslated: translate it where it is shown)."""
        return self.label if self.assessable and self.label is not None else NOT_ASSESSABLE

    def rounded(self) -> tuple[str, str | None]:
        """(probability, threshold) as text with 2 decimals, 3 when 2 would make them look equal."""
        digits = 2
        if self.threshold is not None and round(self.probability, 2) == round(self.threshold, 2):
            digits = 3
        shown = f"{self.probability:.{digits}f}"
        return shown, None if self.threshold is None else f"{self.threshold:.{digits}f}"


def reading(prediction: Prediction) -> Reading:
    """The Reading of one prediction (positive-class probability, or the top class's for multi-class)."""
    return reading_of(prediction.as_dict())


def reading_of(fields: Mapping[str, Any]) -> Reading:
    """The Reading of a prediction's contract fields (the ``predict --json`` object): what a report prints
    is then rounded and worded exactly as the screen shows it."""
    probabilities, positive, threshold = fields["probabilities"], fields.get("positive_class"), fields.get("threshold")
    binary = positive in probabilities and threshold is not None and len(probabilities) == 2
    score_class = positive if binary else max(probabilities, key=probabilities.__getitem__)
    assert score_class is not None
    assessable = bool(fields.get("assessable", not fields.get("out_of_distribution", False)))
    return Reading(
        label=fields.get("label") if assessable else None,
        score_class=score_class,
        probability=float(probabilities[score_class]),
        threshold=threshold if binary else None,
        threshold_source=fields.get("threshold_source") or "stored",
        assessable=assessable,
    )


def reading_text(item: Reading) -> str:
    """The numbers as a sentence, the text alternative of every chart ("PNEUMONIA probability 0.38, ...")."""
    probability, threshold = item.rounded()
    finding = _(item.finding)
    if threshold is None:
        return _("Top class {cls}, probability {probability}: {finding}").format(
            cls=item.score_class, probability=probability, finding=finding
        )
    return _("{cls} probability {probability}, threshold {threshold}: {finding}").format(
        cls=item.score_class, probability=probability, threshold=threshold, finding=finding
    )


def results_table(
    results: list[Any], model: str | None = None, in_force: tuple[float | None, str] | None = None
) -> list[dict[str, Any]]:
    """One row per file (``core.services.imaging.FileResult``s): its finding, the positive (or top) class's probability and the threshold in force.

    Numbers are rounded for reading (2 decimals). ``model`` and ``in_force`` ((threshold, source), see
    ``threshold_in_force``) fill the model and threshold of failed files too: every row names both.
    A film that is not assessable has no ``label`` and no ``probability``: its (unreliable) probability
    is in ``probability (not assessable)``, so it sorts apart from every labelled film.
    """
    in_force_threshold, source = in_force or (None, None)
    rows = []
    for item in results:
        row: dict[str, Any] = {
            "file": item.name,
            "label": None,
            "finding": None,
            "class": None,
            "probability": None,
            "threshold": None if in_force_threshold is None else round(in_force_threshold, 2),
            "threshold source": source,
            "assessable": None,
            "model": model,
            "error": item.error or "",
            UNRELIABLE_PROBABILITY: None,
        }
        if item.prediction is not None:
            said = reading(item.prediction)
            probability, threshold = said.rounded()
            row.update(
                {
                    "label": said.label if said.assessable else None,
                    "finding": _(said.finding),
                    "class": said.score_class,
                    "threshold": None if threshold is None else float(threshold),
                    "probability" if said.assessable else UNRELIABLE_PROBABILITY: float(probability),
                    "threshold source": said.threshold_source,
                    "assessable": said.assessable,
                    "model": item.prediction.model,
                }
            )
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
