"""Model cards: complete for every bundled model, every number recomputable, never stale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from core import config
from core.charts import cards as card_charts
from core.models import cards, metrics, registry

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.parent for p in config.BUNDLED_MODELS_DIR.glob("*/*/meta.json"))
DETAIL_FIELDS = ("name", "version", "date", "architecture", "input", "classes", "training_command", "kind")


def bundled_ref(model_dir: Path) -> registry.ModelRef:
    return registry.resolve(f"{model_dir.parent.name}:{model_dir.name}")


@pytest.fixture(params=BUNDLED, ids=lambda p: f"{p.parent.name}:{p.name}")
def bundled(request) -> tuple[registry.ModelRef, dict]:
    ref = bundled_ref(request.param)
    return ref, cards.load_card(ref)


def test_there_are_bundled_models_to_check() -> None:
    assert any(p.parent.name == "chest_xray" for p in BUNDLED)


def test_every_bundled_card_has_every_mitchell_section(bundled) -> None:
    ref, card = bundled
    assert cards.missing_sections(card) == []
    json.dumps(card, allow_nan=False)  # strict JSON: undefined numbers are null, never NaN
    details = card["model_details"]
    for field in DETAIL_FIELDS:
        assert details.get(field), field
    assert (details["name"], details["version"]) == (ref.name, ref.version)
    if ref.meta.get("positive_class"):
        assert details["threshold"] == ref.meta["threshold"]
    for part in ("primary_uses", "primary_users", "out_of_scope"):
        assert card["intended_use"][part] and all(isinstance(t, str) and t for t in card["intended_use"][part])
    for field in ("dataset", "source", "license", "population"):
        assert card["training_data"][field] and "Unknown" not in card["training_data"][field], field
    assert card["evaluation_data"]["n"] == card["quantitative_analyses"]["n"] > 0
    assert card["ethical_considerations"] and card["caveats_and_recommendations"]


def test_bundled_card_on_disk_is_current(bundled) -> None:
    ref, _ = bundled
    on_disk = json.loads((ref.path / registry.CARD_FILE).read_text())
    assert cards.is_current(on_disk, ref.path), f"stale card: run `python -m core.models.cards rebuild {ref.spec}`"


def test_card_metrics_equal_a_recomputation_from_the_stored_predictions(bundled) -> None:
    ref, card = bundled
    preds = cards.load_predictions(ref.path)
    labels, probs = preds["labels"], preds["probabilities"]
    overall = card["quantitative_analyses"]["overall"]
    classes = ref.meta["classes"]
    positive = classes.index(ref.meta["positive_class"])
    is_pos, scores = labels == positive, probs[:, positive]
    said = scores >= ref.meta["threshold"]
    expected = {
        "auc": roc_auc_score(is_pos, scores),
        "sensitivity": (said & is_pos).sum() / is_pos.sum(),
        "specificity": (~said & ~is_pos).sum() / (~is_pos).sum(),
        "ppv": (said & is_pos).sum() / said.sum(),
        "npv": (~said & ~is_pos).sum() / (~said).sum(),
        "accuracy": (said == is_pos).mean(),
        "brier": brier_score_loss(is_pos, scores),
    }
    for name, value in expected.items():
        assert overall[name]["value"] == pytest.approx(value, abs=1e-9), name
    counts = card["quantitative_analyses"]["confusion_matrix"]["counts"]
    assert counts[positive][positive] == int((said & is_pos).sum())
    assert sum(map(sum, counts)) == len(labels)
    # and they agree with what training measured on the same validation cases
    for name in ("auc", "sensitivity", "specificity"):
        if name in ref.meta.get("validation", {}):
            assert overall[name]["value"] == pytest.approx(ref.meta["validation"][name], abs=1e-6), name


def test_every_interval_contains_its_point_estimate(bundled) -> None:
    _, card = bundled
    qa = card["quantitative_analyses"]
    entries = list(qa["overall"].items())
    for group in qa.get("subgroups", []):
        entries += [(f"{group['subgroup']}.{k}", v) for k, v in group["metrics"].items()]
    checked = 0
    for name, entry in entries:
        if entry["value"] is None:
            assert entry["ci95"] == [None, None], name
            continue
        low, high = entry["ci95"]
        assert low <= entry["value"] <= high, name
        checked += 1
    assert checked >= len(metrics.BINARY_METRICS)


def test_curves_tables_and_subgroups_are_present(bundled) -> None:
    ref, card = bundled
    qa = card["quantitative_analyses"]
    assert len(qa["roc_curve"]["fpr"]) == len(qa["roc_curve"]["tpr"]) >= 3
    assert qa["pr_curve"]["recall"] and qa["calibration"]["bins"]
    assert sum(b["count"] for b in qa["calibration"]["bins"]) == qa["n"]
    assert [r["threshold"] for r in qa["threshold_table"] if r["chosen"]] == [ref.meta["threshold"]]
    assert len(qa["decision_curve"]["model"]) == len(qa["decision_curve"]["threshold_probability"])
    groups = {g["subgroup"] for g in qa["subgroups"]}
    if ref.meta["kind"] == "image-classifier":
        assert {"bacteria", "virus"} <= groups  # aetiology from the Kermany file names
        assert qa["out_of_distribution"]["measured"]
    assert sum(g["n"] for g in qa["subgroups"]) == qa["n"]


def test_markdown_shows_every_section_and_the_numbers(bundled) -> None:
    _, card = bundled
    text = cards.render_markdown(card)
    for title in ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
                  "Quantitative analyses", "Ethical considerations", "Caveats and recommendations"):
        assert f"## {title}" in text
    auc = card["quantitative_analyses"]["overall"]["auc"]
    assert f"{auc['value']:.3f} ({auc['ci95'][0]:.3f}-{auc['ci95'][1]:.3f})" in text
    assert card["model_details"]["training_command"] in text


def test_markdown_rounds_the_threshold_for_reading(bundled) -> None:
    """One meaning per number: the reader sees 0.15, not 0.15462689846754074 (the JSON keeps every digit)."""
    _, card = bundled
    threshold = card["model_details"]["threshold"]
    text = cards.render_markdown(card)
    assert f"- **Threshold**: {threshold:.2f}" in text
    assert repr(threshold) not in text or repr(threshold) == f"{threshold:.2f}"


def _copy_bundled_into_home(version: str) -> Path:
    source = config.BUNDLED_MODELS_DIR / "chest_xray" / "1"
    target = config.home_models_dir() / "chest_xray" / version
    shutil.copytree(source, target)
    return target


def test_a_changed_model_gets_a_fresh_card_and_old_schemas_are_rebuilt(isolated_home: Path) -> None:
    target = _copy_bundled_into_home("9")  # a version number no bundled version uses
    ref = registry.resolve("chest_xray:9")
    copied = cards.load_card(ref)
    assert copied["model_details"]["version"] == "9"  # the copied card is still current, renamed

    old = dict(copied, schema_version=cards.CARD_SCHEMA_VERSION - 1)
    assert not cards.is_current(old, target)

    # A new model in the same folder: new predictions, training data no longer at hand.
    preds = cards.load_predictions(target)
    flipped = preds["probabilities"][:, ::-1].copy()
    np.savez(target / cards.PREDICTIONS_FILE, labels=preds["labels"], probabilities=flipped, subgroups=preds["subgroups"])
    meta = json.loads((target / "meta.json").read_text())
    meta["training"]["data"] = str(isolated_home / "moved_away")
    for carried in ("dataset", "card_text", "subgroup_labels"):  # trained on a folder nobody described
        meta.pop(carried)
    (target / "meta.json").write_text(json.dumps(meta))
    assert not cards.is_current(json.loads((target / "card.json").read_text()), target)

    fresh = cards.load_card(registry.resolve("chest_xray:9"))
    positive = meta["classes"].index(meta["positive_class"])
    assert fresh["quantitative_analyses"]["overall"]["auc"]["value"] == pytest.approx(
        roc_auc_score(preds["labels"] == positive, flipped[:, positive]))
    assert cards.is_current(json.loads((target / "card.json").read_text()), target)  # stored beside the model
    ood = fresh["quantitative_analyses"]["out_of_distribution"]
    assert ood["validation_flag_rate"] == meta["ood"]["validation_flag_rate"]  # training's measurement, named so
    assert "training" in ood["validation_source"]
    # A user's own data: generic intended use and the not-independently-evaluated caveat.
    assert not fresh["model_details"]["documented_model"]
    assert any("NOT independently evaluated" in c for c in fresh["caveats_and_recommendations"])
    assert cards.missing_sections(fresh) == []


def _synthetic_model(folder: Path, kind: str, classes: list[str], positive: str | None, subgroups: list[str]) -> Path:
    rng = np.random.default_rng(5)
    n, k = 240, len(classes)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    folder.mkdir(parents=True)
    np.savez(folder / cards.PREDICTIONS_FILE, labels=labels, probabilities=probs,
             subgroups=np.asarray(subgroups * (n // len(subgroups))))
    meta = {"name": "user_model", "version": "", "kind": kind, "created": "2026-01-01T00:00:00Z",
            "architecture": "test", "classes": classes, "positive_class": positive,
            "threshold": 0.5 if positive else None, "input": {"size": 64, "channels": 1},
            "training": {"command": "python -m core train --data my_folder --name user_model", "data": "my_folder"}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_multiclass_and_risk_cards_are_complete(tmp_path: Path) -> None:
    multi = cards.build_card(_synthetic_model(tmp_path / "m", "image-classifier", ["a", "b", "c"], None, ["unspecified"]))
    assert cards.missing_sections(multi) == []
    assert set(multi["quantitative_analyses"]["roc_curve_by_class"]) == {"a", "b", "c"}
    assert "decision_curve" not in multi["quantitative_analyses"]
    assert "macro" in multi["metrics"]["decision"]
    assert "## Quantitative analyses" in cards.render_markdown(multi)
    assert {"ROC", "Precision-recall", "Calibration", "Confusion matrix"} <= set(card_charts.all_figures(multi))

    risk = cards.build_card(_synthetic_model(tmp_path / "r", "tabular-risk", ["no", "yes"], "yes", ["21-29", "30-39", "40-49", "50+"]))
    assert cards.missing_sections(risk) == []
    assert [g["subgroup"] for g in risk["quantitative_analyses"]["subgroups"]] == ["21-29", "30-39", "40-49", "50+"]
    assert all(g["metrics"]["auc"]["value"] is not None for g in risk["quantitative_analyses"]["subgroups"])
    assert not risk["quantitative_analyses"]["out_of_distribution"]["measured"]
    assert "Decision curve" in card_charts.all_figures(risk) and "| 50+ | 60 |" in cards.render_markdown(risk)


def test_cli_prints_the_card_as_json_and_markdown(isolated_home: Path, capsys) -> None:
    from core import cli

    env = {"LUCIDDX_HOME": str(isolated_home), "PATH": "/usr/bin:/bin"}
    as_json = subprocess.run([sys.executable, "-m", "core", "card", "--model", "chest_xray", "--format", "json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    card = json.loads(as_json.stdout)
    assert card["model_details"]["name"] == "chest_xray" and cards.missing_sections(card) == []
    assert cli.main(["card", "--model", "diabetes_risk", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Model card: diabetes_risk:")


def test_a_registered_version_keeps_the_card_written_in_its_staging_folder(isolated_home: Path, tmp_path: Path) -> None:
    staging = registry.new_staging_dir()
    for item in (config.BUNDLED_MODELS_DIR / "chest_xray" / "1").iterdir():
        if item.name != registry.CARD_FILE:
            shutil.copy2(item, staging / item.name)
    meta = json.loads((staging / "meta.json").read_text())
    meta.update(name="knee_xray", version="")
    meta["training"]["data"] = str(tmp_path / "my_knees")  # a user's folder, not a documented dataset
    for carried in ("dataset", "card_text", "subgroup_labels"):
        meta.pop(carried)
    (staging / "meta.json").write_text(json.dumps(meta))

    written = cards.write_card(staging)  # what training does before registering
    ref = registry.commit_version(staging, "knee_xray")

    on_disk = json.loads((ref.path / registry.CARD_FILE).read_text())
    assert cards.is_current(on_disk, ref.path)  # registration does not make it stale
    loaded = cards.load_card(ref)
    assert loaded["generated"] == written["generated"]  # not rebuilt
    assert (loaded["model_details"]["name"], loaded["model_details"]["version"]) == ("knee_xray", ref.version)
    assert json.loads((ref.path / registry.CARD_FILE).read_text())["model_details"]["version"] == ref.version
    assert "user's own folder" in loaded["training_data"]["dataset"] and "Unknown" in loaded["training_data"]["license"]
    assert loaded["intended_use"]["primary_uses"][0].startswith("Research use")
    assert cards.missing_sections(loaded) == []
