"""core.models.metrics against scikit-learn and hand computations, on data where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from core.models import curves, metrics, thresholds


@pytest.fixture(scope="module")
def binary_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    is_pos = rng.random(300) < 0.35
    scores = np.clip(rng.normal(0.35 + 0.3 * is_pos, 0.2), 0, 1)
    scores[:10] = np.round(scores[:10], 1)  # ties, which AUC must count as half
    return is_pos, scores


def test_binary_point_metrics_match_scikit_learn(binary_data) -> None:
    is_pos, scores = binary_data
    said = scores >= 0.5
    got = metrics.binary_metrics(is_pos, scores, 0.5)
    assert got["auc"] == pytest.approx(roc_auc_score(is_pos, scores), abs=1e-12)
    assert got["sensitivity"] == pytest.approx(recall_score(is_pos, said))
    assert got["specificity"] == pytest.approx(recall_score(~is_pos, ~said))
    assert got["ppv"] == pytest.approx(precision_score(is_pos, said))
    assert got["npv"] == pytest.approx(precision_score(~is_pos, ~said))
    assert got["accuracy"] == pytest.approx(accuracy_score(is_pos, said))
    assert got["f1"] == pytest.approx(f1_score(is_pos, said))
    assert got["brier"] == pytest.approx(brier_score_loss(is_pos, scores))


def test_bootstrap_is_stratified_reproducible_and_brackets_the_estimate(binary_data) -> None:
    is_pos, scores = binary_data
    idx = metrics.stratified_indices(is_pos, 50, seed=3)
    assert (is_pos[idx].sum(1) == is_pos.sum()).all()  # every resample keeps the class counts
    first = metrics.binary_metrics_with_ci(is_pos, scores, 0.5, n_resamples=400, seed=11)
    again = metrics.binary_metrics_with_ci(is_pos, scores, 0.5, n_resamples=400, seed=11)
    assert first == again
    for name, entry in first.items():
        low, high = entry["ci95"]
        assert low <= entry["value"] <= high, name
        assert high - low > 0, name


def test_undefined_metrics_are_none_not_numbers() -> None:
    only_pos = np.ones(20, dtype=bool)
    got = metrics.binary_metrics_with_ci(only_pos, np.linspace(0, 1, 20), 0.5, n_resamples=50)
    assert got["auc"] == {"value": None, "ci95": [None, None]}
    assert got["specificity"]["value"] is None
    assert got["sensitivity"]["value"] == pytest.approx(0.5)


def test_confusion_matrix_counts_true_rows_predicted_columns() -> None:
    assert metrics.confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2) == [[1, 1], [1, 2]]


def test_threshold_table_marks_the_chosen_threshold_and_reaches_targets(binary_data) -> None:
    is_pos, scores = binary_data
    table = thresholds.threshold_table(is_pos, scores, chosen=0.42)
    chosen = [row for row in table if row["chosen"]]
    assert len(chosen) == 1 and chosen[0]["threshold"] == 0.42
    assert chosen[0]["sensitivity"] == pytest.approx(metrics.binary_metrics(is_pos, scores, 0.42)["sensitivity"])
    by_note = {row["note"]: row for row in table}
    assert by_note["reaches 95% sensitivity"]["sensitivity"] >= 0.95
    assert by_note["reaches 95% specificity"]["specificity"] >= 0.95
    assert [row["threshold"] for row in table] == sorted(row["threshold"] for row in table)


def test_net_benefit_and_reference_strategies() -> None:
    is_pos = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.6, 0.7, 0.1, 0.2, 0.3, 0.1, 0.05, 0.4, 0.2])
    # At pt = 0.5: treated = scores >= 0.5 -> TP 2, FP 1; NB = 2/10 - 1/10 * 1 = 0.1
    assert curves.net_benefit(is_pos, scores, 0.5) == pytest.approx(0.1)
    curve = curves.decision_curve(is_pos, scores, np.array([0.2, 0.5]))
    assert curve["treat_all"] == pytest.approx([0.3 - 0.7 * 0.25, 0.3 - 0.7 * 1.0])
    assert curve["treat_none"] == [0.0, 0.0]


def test_reliability_bins_and_calibration_error() -> None:
    scores = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 0.95])
    is_pos = np.array([0, 0, 1, 1, 1, 1, 0], dtype=bool)
    cal = curves.reliability_bins(is_pos, scores, n_bins=10)
    assert [b["count"] for b in cal["bins"]] == [2, 1, 4]
    assert cal["bins"][2]["observed"] == pytest.approx(0.75)
    expected = (2 * 0.05 + 1 * 0.85 + 4 * 0.2) / 7
    assert cal["expected_calibration_error"] == pytest.approx(expected)


def test_roc_and_pr_curves_span_the_unit_square(binary_data) -> None:
    is_pos, scores = binary_data
    roc = curves.roc_points(is_pos, scores, max_points=50)
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1
    assert len(roc["fpr"]) <= 50
    pr = curves.pr_points(is_pos, scores)
    assert pr["prevalence"] == pytest.approx(is_pos.mean())
    assert 0 < pr["average_precision"] <= 1


def test_multiclass_macro_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 240)
    logits = rng.normal(size=(240, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = metrics.multiclass_metrics_with_ci(labels, probs, n_resamples=200)
    predicted = probs.argmax(1)
    assert got["auc"]["value"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert got["sensitivity"]["value"] == pytest.approx(recall_score(labels, predicted, average="macro"))
    assert got["ppv"]["value"] == pytest.approx(precision_score(labels, predicted, average="macro"))
    assert got["f1"]["value"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert got["accuracy"]["value"] == pytest.approx(accuracy_score(labels, predicted))
    assert got["brier"]["value"] == pytest.approx(((probs - np.eye(3)[labels]) ** 2).sum(1).mean())
    for entry in got.values():
        assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1]


def test_subgroups_with_one_class_are_ranked_against_all_negatives(binary_data) -> None:
    is_pos, scores = binary_data
    groups = np.where(is_pos, np.where(np.arange(len(is_pos)) % 2 == 0, "virus", "bacteria"), "unspecified")
    rows = {r["subgroup"]: r for r in metrics.subgroup_metrics(is_pos, scores, groups, 0.5, n_resamples=100)}
    assert set(rows) == {"virus", "bacteria", "unspecified"}
    virus = rows["virus"]
    assert virus["negatives"] == 0 and virus["metrics"]["auc"]["value"] is None
    pooled = (groups == "virus") | ~is_pos
    assert virus["auc_vs_all_negatives"]["value"] == pytest.approx(roc_auc_score(is_pos[pooled], scores[pooled]))
    assert "auc_vs_all_negatives" not in rows["unspecified"]


def test_version_deltas_are_paired_on_the_same_cases_and_bracket_the_change(binary_data) -> None:
    is_pos, scores = binary_data
    labels = is_pos.astype(int)
    a = {"labels": labels, "probabilities": np.column_stack([1 - scores, scores]), "positive": 1, "threshold": 0.5}
    same = metrics.delta_with_ci(a, a, n_resamples=200)
    assert all(v["delta"] == 0 and v["ci95"] == [0.0, 0.0] and v["paired"] for v in same.values())
    better = np.clip(scores + 0.15 * (2 * is_pos - 1), 0, 1)
    b = {**a, "probabilities": np.column_stack([1 - better, better])}
    delta = metrics.delta_with_ci(a, b, n_resamples=300)
    assert delta["auc"]["delta"] > 0 and delta["auc"]["ci95"][0] > 0  # a clearly better model
    for v in delta.values():
        assert v["ci95"][0] <= v["delta"] <= v["ci95"][1]


def test_temperature_fit_recovers_a_known_overconfidence_and_keeps_the_ranking() -> None:
    from core.models import calibration

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2.0, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(int)  # calibrated at T = 1
    overconfident = 1 / (1 + np.exp(-2.5 * logits))  # the same model, logits x 2.5
    probs = np.stack([1 - overconfident, overconfident], axis=1)
    t = calibration.fit_temperature(probs, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    scaled = calibration.rescale(probs, t)
    assert calibration.negative_log_likelihood(scaled, labels) < calibration.negative_log_likelihood(probs, labels)
    assert calibration.expected_calibration_error(labels == 1, scaled[:, 1]) < \
        calibration.expected_calibration_error(labels == 1, probs[:, 1])
    assert np.array_equal(np.argsort(scaled[:, 1], kind="stable"), np.argsort(probs[:, 1], kind="stable"))


def test_centred_threshold_keeps_a_margin_where_best_youden_hugs_the_crowded_edge() -> None:
    is_pos = np.array([True] * 60 + [False] * 60)
    # Normals crowd just under 0.1; pneumonia spreads from 0.6 up: every cut in (0.1, 0.6) is perfect.
    scores = np.concatenate([np.linspace(0.6, 0.999, 60), np.linspace(0.05, 0.099, 60)])
    both = np.stack([is_pos]), np.stack([scores])
    centred = thresholds.centred_youden_threshold(*both)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert logit(centred) == pytest.approx((logit(0.099) + logit(0.6)) / 2, abs=0.05)
    assert ((scores >= centred) == is_pos).all()
    assert thresholds.rule_threshold(thresholds.CENTRED_YOUDEN, *both) == centred
    assert thresholds.rule_threshold(thresholds.ROBUST_YOUDEN, *both) == thresholds.robust_youden_threshold(*both)
