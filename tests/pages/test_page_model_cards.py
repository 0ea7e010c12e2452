"""The Model cards page and the compact card panel, driven headless through the real app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import config
from core.models import cards, registry

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGE = "pages/model_cards.py"


def open_cards_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Model cards"
    return at


@pytest.fixture()
def second_version(isolated_home: Path) -> str:
    """The newest bundled version copied as the next version: identical weights and predictions."""
    newest = registry.resolve("chest_xray").version
    following = str(int(newest) + 1)
    target = config.home_models_dir() / "chest_xray" / following
    shutil.copytree(config.BUNDLED_MODELS_DIR / "chest_xray" / newest, target)
    meta = json.loads((target / "meta.json").read_text())
    meta["version"] = following
    (target / "meta.json").write_text(json.dumps(meta))
    return f"chest_xray:{following}"


def test_page_shows_the_card_its_charts_and_downloads() -> None:
    at = open_cards_page()
    at.selectbox(key="card_model").select("chest_xray").run()
    assert not at.exception, at.exception
    card = cards.load_card(registry.resolve("chest_xray"))
    labels = {m.label: m.value for m in at.metric}
    assert labels["AUC (ROC)"] == f"{card['quantitative_analyses']['overall']['auc']['value']:.3f}"
    text = "\n".join(m.value for m in at.markdown)
    for section in ("## Intended use", "## Training data", "## Caveats and recommendations", "doi:10.17632/rscbjbr9sj.2"):
        assert section in text
    charts = at.get("plotly_chart")
    assert len(charts) >= 7  # metrics, ROC, PR, calibration, decision curve, confusion matrix, subgroups
    titles = " ".join(json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts)
    for what in ("ROC curve", "Precision-recall", "Reliability diagram", "Decision curve", "Subgroups"):
        assert what in titles
    evidence, thresholds = at.dataframe[0].value, at.dataframe[1].value
    assert list(evidence.columns) == ["", "internal validation"] and "cases (n)" in list(evidence[""])
    assert "No external validation" in " ".join(w.value for w in at.warning)
    assert (thresholds["chosen"] == "◀ chosen").sum() == 1
    assert len(at.get("download_button")) == 2
    if len(registry.list_versions("chest_xray")) == 1:
        assert "single version" in " ".join(i.value for i in at.info)  # nothing to compare yet
    else:
        assert at.selectbox(key="card_compare_with")  # the bundled versions can be compared


def test_page_compares_two_versions_with_deltas(second_version: str) -> None:
    at = open_cards_page()
    original = f"chest_xray:{int(second_version.split(':')[1]) - 1}"
    at.selectbox(key="card_model").select("chest_xray").run()
    # A copied version waits for an administrator: the page opens on the approved one and marks the copy.
    assert at.selectbox(key="card_version_chest_xray").value == original.split(":")[1]
    at.selectbox(key="card_version_chest_xray").select(second_version.split(":")[1]).run()
    assert "not approved for clinical use" in " ".join(w.value for w in at.warning)
    at.selectbox(key="card_compare_with").select(original).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table["metric"])[:3] == ["AUC (ROC)", "Sensitivity (recall)", "Specificity"]
    assert set(table.columns) >= {original, second_version, "change", "change 95% CI"}
    assert (table["change"] == 0).all()  # an identical copy: no change, paired interval of zero width
    assert "paired" in " ".join(c.value for c in at.caption)
    assert any(f"Change from {original} to {second_version}" in json.loads(c.proto.spec)["layout"]["title"]["text"]
               for c in at.get("plotly_chart"))

    at.selectbox(key="card_version_chest_xray").select("1").run()
    assert not at.exception and at.selectbox(key="card_compare_with").value == registry.approved_version("chest_xray").spec


def test_card_panel_shows_version_use_metrics_with_ci_limits_and_ood_note() -> None:
    def script() -> None:
        from ui.card_panel import model_card_panel

        model_card_panel("chest_xray")

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, at.exception
    card = cards.load_card(registry.resolve("chest_xray"))
    text = "\n".join(m.value for m in at.markdown)
    assert f"`chest_xray:{card['model_details']['version']}`" in text
    assert "Limitations" in text
    captions = " ".join(c.value for c in at.caption)
    assert card["intended_use"]["primary_uses"][0] in captions
    auc = card["quantitative_analyses"]["overall"]["auc"]
    assert f"95% CI {auc['ci95'][0]:.3f}–{auc['ci95'][1]:.3f}" in captions
    assert "out of distribution" in captions and "non-chest" in captions
    assert [m.value for m in at.metric][0] == f"{auc['value']:.3f}"


def test_page_shows_a_recorded_external_validation_beside_the_internal_one() -> None:
    from core.models import site_validation

    ref = registry.resolve("chest_xray")  # the version the page opens on
    preds = cards.load_predictions(ref.path)
    labels, probs = preds["labels"][::2], preds["probabilities"][::2]  # real stored predictions, half the films
    result = site_validation.evaluate_site(labels, probs, ref.meta)
    validation_id = site_validation.record(ref, result, labels, probs, source="test hospital")
    at = open_cards_page()
    at.selectbox(key="card_model").select("chest_xray").run()
    assert not at.exception, at.exception
    evidence = at.dataframe[0].value  # the site's figures lead, the internal ones follow
    assert list(evidence.columns) == ["", f"external validation {validation_id}", "internal validation"]
    assert evidence.iloc[0][f"external validation {validation_id}"] == str(len(labels))
    assert "Read the external validation" in " ".join(s.value for s in at.success)


def test_with_a_site_threshold_adopted_the_site_figures_lead_the_card_and_the_panel() -> None:
    """Issue 21 item 6: the figures that apply here (n, intervals, threshold and its source) come first."""
    from core.models import metrics
    from tests.imaging.test_reading_viewer import _adopt_strict_threshold

    ref = registry.resolve("chest_xray")
    threshold, source = _adopt_strict_threshold(ref)
    validation_id = source.split(":", 1)[1]
    headline = cards.load_card(ref)["evidence"]["headline"]
    preds = cards.load_predictions(ref.path)
    positive = ref.meta["classes"].index(ref.meta["positive_class"])
    expected = metrics.binary_metrics(preds["labels"] == positive, preds["probabilities"][:, positive], threshold)
    assert headline["sensitivity"]["value"] == pytest.approx(expected["sensitivity"])
    assert headline["specificity"]["value"] == pytest.approx(expected["specificity"])

    at = open_cards_page()
    at.selectbox(key="card_model").select("chest_xray").run()
    assert not at.exception, at.exception
    text = [m.value for m in at.markdown]
    site_at = next(i for i, t in enumerate(text) if t.startswith(f"#### At this site: site validation {validation_id}"))
    internal_at = next(i for i, t in enumerate(text) if t.startswith("#### Internal validation"))
    assert site_at < internal_at
    sensitivity = [m.value for m in at.metric if m.label == "Sensitivity (recall)"]
    overall = cards.load_card(ref)["quantitative_analyses"]["overall"]
    assert sensitivity == [f"{expected['sensitivity']:.3f}", f"{overall['sensitivity']['value']:.3f}"]
    captions = " ".join(c.value for c in at.caption)
    assert f"{len(preds['labels'])} cases" in captions and f"adopted from site validation {validation_id}" in captions
    assert "chosen on these same cases" in " ".join(w.value for w in at.warning)  # its honest, cross-fitted figure
    card_text = cards.render_markdown(cards.load_card(ref))
    assert card_text.index("Figures that apply here") < card_text.index("| | external validation")

    def script() -> None:
        from ui.card_panel import model_card_panel

        model_card_panel("chest_xray")

    panel = AppTest.from_function(script, default_timeout=60).run()
    assert not panel.exception, panel.exception
    lead = "\n".join(m.value for m in panel.markdown)
    assert f"**At this site** · site validation {validation_id}" in lead
    assert [m.value for m in panel.metric][1] == f"{expected['sensitivity']:.3f}"  # AUC, sensitivity, specificity
    captions = " ".join(c.value for c in panel.caption)
    assert f"Threshold in force: {threshold:.2f}, adopted from site validation {validation_id}" in captions
    assert "Internal validation (" in captions  # the internal figures follow, labelled
