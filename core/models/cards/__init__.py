"""Model cards (Mitchell et al., 2019, "Model Cards for Model Reporting"), computed, never typed.

A card is built from what a model version stores about itself: ``meta.json`` (what it is, how it was
trained, its threshold, its data's provenance and prose, measured out-of-distribution rates) and
``validation_predictions.npz`` (labels (N,), probabilities (N, K), subgroups (N,) of its held-out or
out-of-fold cases). ``build`` computes, ``store`` keeps cards current, ``markdown`` renders,
``compare`` sets two versions side by side. Works the same for every kind of model.
"""

from core.models.cards.build import CARD_SCHEMA_VERSION, PREDICTIONS_FILE, build_card, fingerprint, load_predictions
from core.models.cards.compare import compare_versions
from core.models.cards.localize import localized
from core.models.cards.markdown import render_markdown
from core.models.cards.prose import SECTION_TITLES, SECTIONS
from core.models.cards.store import (attach_site_evidence, headline_lines, is_current, key_metrics, load_card, missing_sections,
                                    rebuild_card, threshold_source_text, write_card)

__all__ = [
    "CARD_SCHEMA_VERSION", "PREDICTIONS_FILE", "SECTIONS", "SECTION_TITLES", "attach_site_evidence", "build_card", "compare_versions",
    "fingerprint", "is_current", "key_metrics", "load_card", "localized", "load_predictions", "missing_sections",
    "rebuild_card", "render_markdown", "write_card", "headline_lines", "threshold_source_text",
]
