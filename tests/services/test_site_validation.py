"""Site validation: figures recomputed from the stored predictions, honest candidate thresholds, adoption."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidDatasetError, RegistryError
from core.models import cards, metrics, registry, site_validation


@pytest.fixture(scope="module")
def site_cases() -> tuple[registry.ModelRef, np.ndarray, np.ndarray]:
    """Real cases: the bundled model's stored predictions on 1,044 patient-held-out films, resampled to a
    site with a different prevalence (all normals, one pneumonia film in three)."""
    ref = registry.resolve("chest_xray:1")
    preds = cards.load_predictions(ref.path)
    labels, probs = preds["labels"], preds["probabilities"]
    positive = ref.meta["classes"].index(ref.meta["positive_class"])
    keep = np.flatnonzero(labels != positive).tolist() + np.flatnonzero(labels == positive)[::3].tolist()
    return ref, labels[keep], probs[keep]


def test_site_figures_are_recomputed_from_the_predictions(site_cases) -> None:
    ref, labels, probs = site_cases
    result = site_validation.evaluate_site(labels, probs, ref.meta, target_sensitivity=0.97)
    positive = ref.meta["classes"].index(ref.meta["positive_class"])
    is_pos, scores = labels == positive, probs[:, positive]
    expected = metrics.binary_metrics(is_pos, scores, ref.meta["threshold"])
    assert result["n"] == len(labels) and result["prevalence"] == pytest.approx(is_pos.mean())
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv"):
        assert result[key] == pytest.approx(expected[key])
        low, high = result["intervals"][key]
        assert low <= result[key] <= high
    rules = {row["rule"]: row for row in result["thresholds"]}
    assert set(rules) == {"stored", "target-sensitivity", "youden"}
    assert rules["stored"]["threshold"] == ref.meta["threshold"] and "cross_fitted" not in rules["stored"]
    assert rules["target-sensitivity"]["sensitivity"] >= 0.97
    for rule in ("target-sensitivity", "youden"):
        honest = rules[rule]["cross_fitted"]
        assert rules[rule]["chosen_on_these_cases"] and 0.0 <= honest["sensitivity"] <= 1.0
    # PPV at the site's prevalence, not the training split's
    said = scores >= rules["youden"]["threshold"]
    assert rules["youden"]["ppv"] == pytest.approx((said & is_pos).sum() / said.sum())


def test_record_adopt_and_reset_a_site_threshold(site_cases, isolated_home) -> None:
    ref, labels, probs = site_cases
    result = site_validation.evaluate_site(labels, probs, ref.meta)
    assert site_validation.threshold_in_force(ref) == (ref.meta["threshold"], "stored")
    validation_id = site_validation.record(ref, result, labels, probs, source="test site")
    listed = site_validation.list_validations(ref)
    assert [v["id"] for v in listed] == [validation_id] and listed[0]["auc"] == pytest.approx(result["auc"])
    adopted = site_validation.adopt_threshold(ref, validation_id, "youden", by="admin")
    youden = next(r["threshold"] for r in result["thresholds"] if r["rule"] == "youden")
    assert site_validation.threshold_in_force(ref) == (pytest.approx(youden), f"site:{validation_id}")
    assert adopted["stored_threshold"] == ref.meta["threshold"]
    assert registry.resolve("chest_xray:1").meta["threshold"] == ref.meta["threshold"]  # the version is untouched
    site_validation.reset_threshold(ref)
    assert site_validation.threshold_in_force(ref) == (ref.meta["threshold"], "stored")


def test_bad_requests_are_refused_with_reasons(site_cases) -> None:
    ref, labels, probs = site_cases
    positive = ref.meta["classes"].index(ref.meta["positive_class"])
    one_class = labels == positive
    with pytest.raises(InvalidDatasetError, match="both classes"):
        site_validation.evaluate_site(labels[one_class], probs[one_class], ref.meta)
    with pytest.raises(InvalidDatasetError, match="target sensitivity"):
        site_validation.evaluate_site(labels, probs, ref.meta, target_sensitivity=1.5)
    with pytest.raises(RegistryError, match="not a validation id"):
        site_validation.adopt_threshold(ref, "../../etc", "youden", by="admin")
    with pytest.raises(RegistryError, match="Unknown threshold rule"):
        site_validation.adopt_threshold(ref, "20260101-000000-abcdef", "median", by="admin")


def test_a_card_shows_internal_and_external_validation_side_by_side(site_cases, isolated_home) -> None:
    ref, labels, probs = site_cases
    before = cards.load_card(ref)
    assert before["external_validations"] == [] and "No external validation" in before["evidence"]["read"]
    result = site_validation.evaluate_site(labels, probs, ref.meta)
    validation_id = site_validation.record(ref, result, labels, probs, source="a second hospital")
    card = cards.load_card(ref)
    assert [v["id"] for v in card["external_validations"]] == [validation_id]
    external = card["evidence"]["external"][0]
    assert external["n"] == len(labels) and external["auc"]["value"] == pytest.approx(result["auc"])
    assert card["evidence"]["internal"]["n"] == 1044 and "Read the external validation" in card["evidence"]["read"]
    text = cards.render_markdown(card)
    assert "internal validation" in text and f"external validation {validation_id}" in text
    assert f"{len(labels)}" in text and "Threshold in force" in text


def _site_folder(root, per_class: int = 24):
    """A small labeled folder of real films (every 40th file of each class of the training split)."""
    import shutil

    from tests.conftest import CHEST_XRAY_TRAIN

    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for path in sorted((CHEST_XRAY_TRAIN / cls).glob("*.jpeg"))[::40][:per_class]:
            shutil.copy(path, root / cls / path.name)
    return root


def test_validate_cli_records_an_evaluation_recomputable_from_its_predictions(tmp_path, isolated_home) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LUCIDDX_HOME": str(isolated_home)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=300)

    done = run("validate", "--data", str(_site_folder(tmp_path / "site")), "--model", "chest_xray:1",
               "--target-sensitivity", "0.9", "--record", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n"] == 48 and result["recorded"] and {"auc", "intervals", "thresholds", "prevalence"} <= set(result)
    stored = np.load(isolated_home / "validations" / "chest_xray" / "1" / result["recorded"] / "predictions.npz")
    again = site_validation.evaluate_site(stored["labels"], stored["probabilities"], registry.resolve("chest_xray:1").meta, 0.9)
    assert again["auc"] == pytest.approx(result["auc"]) and again["sensitivity"] == pytest.approx(result["sensitivity"])
    card = json.loads(run("card", "--model", "chest_xray:1", "--format", "json").stdout)
    assert [v["id"] for v in card["external_validations"]] == [result["recorded"]]
    adopted = run("threshold", "--model", "chest_xray:1", "--adopt", result["recorded"], "--rule", "youden", "--json")
    assert adopted.returncode == 0 and json.loads(adopted.stdout)["threshold_source"] == f"site:{result['recorded']}"
    assert run("threshold", "--model", "chest_xray", "--reset").returncode == 2  # a version must be named
    reset = json.loads(run("threshold", "--model", "chest_xray:1", "--reset", "--json").stdout)
    assert reset == {"model": "chest_xray:1", "threshold": registry.resolve("chest_xray:1").meta["threshold"],
                     "threshold_source": "stored"}


def test_the_pdf_names_the_thresholds_source_and_leads_with_the_site(site_cases, isolated_home) -> None:
    from core.reports.pdf import _card_section, _styles, LATIN_FONTS, _text_of, result_lines
    from core.services import catalog

    ref, labels, probs = site_cases
    result = site_validation.evaluate_site(labels, probs, ref.meta)
    validation_id = site_validation.record(ref, result, labels, probs, source="a second hospital")
    adopted = site_validation.adopt_threshold(ref, validation_id, "youden", by="admin")
    summary = catalog.card_summary(cards.load_card(ref))
    headline = summary["headline"]
    assert headline["scope"] == "site" and headline["n"] == len(labels) and headline["rule"] == "youden"
    prediction = {"label": "NORMAL", "probabilities": {"NORMAL": 0.9, "PNEUMONIA": 0.1}, "positive_class": "PNEUMONIA",
                  "threshold": adopted["threshold"], "threshold_source": f"site:{validation_id}", "out_of_distribution": False}
    _headline, lines = result_lines(prediction, headline)
    date = headline["recorded"][:10]
    assert f"Threshold: {adopted['threshold']:.2f}, adopted from site validation {validation_id} of {date}" in lines
    text = _text_of(_card_section(summary, _styles(LATIN_FONTS), LATIN_FONTS))
    assert text.index(f"At this site (site validation {validation_id}") < text.index("Internal validation (the developer")
    assert f"{len(labels)} cases" in text and "cross-fitting" in text


def test_the_audit_log_shows_what_changed(site_cases, isolated_home, capsys) -> None:
    """Issue 21 item 10: an activation says from which version to which; a threshold, old -> new and their sources."""
    import json

    from core.cli import main
    from core.services import activation, admin
    from core.services.audit import Actor

    ref, labels, probs = site_cases
    validation_id = site_validation.record(ref, site_validation.evaluate_site(labels, probs, ref.meta), labels, probs,
                                          source="a second hospital")
    assert main(["threshold", "--model", ref.spec, "--adopt", validation_id, "--rule", "youden", "--json"]) == 0
    youden = json.loads(capsys.readouterr().out)["threshold"]
    assert main(["threshold", "--model", ref.spec, "--reset"]) == 0
    active = registry.active_version(ref.name).spec
    admin_actor = Actor("ada", "admin")
    activation.activate(admin_actor, ref.name, ref.version, override_reason="rollback drill after the site review of last week")
    rows = admin.audit_records(admin_actor)
    changes = [(r["action"], r["change"]) for r in rows if r["action"] in ("threshold", "activate")]
    stored = f"{ref.meta['threshold']:.2f}"
    assert changes == [
        ("threshold", f"threshold {stored} (stored) -> {youden:.2f} (site:{validation_id})"),
        ("threshold", f"threshold {youden:.2f} (site:{validation_id}) -> {stored} (stored)"),
        ("activate", f"{active} -> {ref.spec}"),
    ]
    assert "change" in admin.audit_csv(rows).splitlines()[0]
    capsys.readouterr()
    assert main(["audit", "--action", "activate", "--json"]) == 0
    assert [r["change"] for r in json.loads(capsys.readouterr().out)] == [f"{active} -> {ref.spec}"]
