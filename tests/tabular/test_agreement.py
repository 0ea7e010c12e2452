"""Risk explanations measured (issue 25): KernelSHAP/LIME vs exact SHAP on held-out patients, and stable importance.

Real Pima rows, tiny settings. Negative controls: the shuffled baseline's rank correlation sits near 0, and
refits on shuffled outcomes do not keep a stable leading feature.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.tabular import agreement, labelled, training
from tests.conftest import DIABETES_CSV

FAST = agreement.Settings(background=30, kernel_samples=300, lime_samples=300, seed=0)


@pytest.fixture(scope="module")
def pima() -> labelled.TrainingTable:
    return labelled.load_training_table(DIABETES_CSV, "Outcome")


def test_compare_scores_identical_reversed_and_sign_flipped_vectors() -> None:
    exact = np.array([3.0, -2.0, 1.0, 0.5, -0.1])
    assert agreement.compare(exact, exact) == pytest.approx(
        {"rank_corr": 1.0, "top_overlap": 1.0, "top_sign_agreement": 1.0}
    )
    reversed_ = agreement.compare(exact, np.array([0.1, 0.5, 1.0, 2.0, 3.0]))
    assert reversed_["rank_corr"] == pytest.approx(-1.0) and reversed_["top_overlap"] == pytest.approx(1 / 3)
    assert agreement.compare(exact, -exact)["top_sign_agreement"] == 0.0
    assert agreement.compare(exact, np.zeros(5))["rank_corr"] == 0.0  # no ranking at all counts as 0


def test_held_out_patients_are_never_in_their_folds_training_rows(pima: labelled.TrainingTable) -> None:
    splits = training.cv_splits(pima.y, 10, 0)
    rows = agreement.held_out_patients(pima.y, splits, 60, seed=0)
    assert sum(len(r) for r in rows) == pytest.approx(60, abs=1)
    for (train, test), chosen in zip(splits, rows):
        assert set(chosen) <= set(test) and not set(chosen) & set(train)


def test_kernel_shap_agrees_with_exact_shap_for_a_linear_model_and_the_shuffled_baseline_does_not(
    pima: labelled.TrainingTable,
) -> None:
    fit = training.recipe_fitter("logistic", pima.schema, pima.X)
    splits = training.cv_splits(pima.y, 5, 0)[:2]  # two folds' models are enough here
    categorical = [f.categorical for f in pima.schema.features]
    result = agreement.agreement(fit, pima.X, pima.y, splits, categorical, n_patients=50, settings=FAST)
    assert result["n"] >= 15 and result["folds_used"] == 2
    kernel, random = result["methods"]["kernel_shap"], result["methods"]["random"]
    assert kernel["rank_corr"]["median"] >= 0.85 and kernel["top_sign_agreement"]["mean"] >= 0.9
    assert kernel["rank_corr"]["mean_ci95"][0] > random["rank_corr"]["mean_ci95"][1]
    assert abs(random["rank_corr"]["mean"]) < 0.25  # negative control: shuffled values carry no ranking
    assert result["methods"]["lime"]["rank_corr"]["mean"] > random["rank_corr"]["mean"]
    assert kernel["seconds_per_patient"] > 0 and result["exact_seconds_per_patient"] > 0


def test_bootstrap_refits_keep_glucose_first_and_shuffled_outcomes_do_not(pima: labelled.TrainingTable) -> None:
    fit = training.recipe_fitter("logistic", pima.schema, pima.X)
    train, held_out = training.cv_splits(pima.y, 5, 0)[0]
    stable = agreement.stability(fit, pima.X, pima.y, train, held_out, pima.schema.names, refits=5, seed=0)
    assert stable["top_feature"] == "Glucose" and stable["top_feature_share"] == 1.0
    assert stable["features"][0]["name"] == "Glucose" and stable["features"][0]["rank_ci95"] == [1.0, 1.0]
    assert stable["rank_corr"]["median"] > stable["random_rank_corr"]["median"] + 0.3
    shuffled = np.random.default_rng(1).permutation(pima.y)
    noise = agreement.stability(fit, pima.X, shuffled, train, held_out, pima.schema.names, refits=5, seed=0)
    assert noise["rank_corr"]["median"] < stable["rank_corr"]["median"]
    assert noise["top_unchanged"] < 1.0 or noise["top_feature_share"] < 1.0


def test_the_service_rebuilds_the_bundled_models_folds_and_refuses_another_table(tmp_path) -> None:
    from core.errors import InvalidDatasetError
    from core.models import registry
    from core.services import explanations

    fewer = tmp_path / "diabetes_first_400.csv"  # the right columns, but not the rows the model trained on
    fewer.write_text("\n".join(DIABETES_CSV.read_text().splitlines()[:401]) + "\n")
    with pytest.raises(InvalidDatasetError, match="pass the table it was trained on"):
        explanations.risk_training_table(registry.resolve("diabetes_risk:1"), fewer)
    result = explanations.evaluate_risk_explanations("diabetes_risk:1", patients=10, refits=2, data=DIABETES_CSV)
    assert result["model"] == "diabetes_risk:1" and result["folds"] == 10 and result["n"] == 10
    assert result["stability"]["refits"] == 2 and result["stability"]["held_out_rows"] == 77  # fold 1 of 768
    assert result["methods"]["kernel_shap"]["rank_corr"]["median"] > 0.8


def test_one_patients_kernel_check_agrees_and_a_tampered_explanation_does_not() -> None:
    from core.services import tabular
    from core.tabular.predictor import load_risk_model

    predictor = load_risk_model("diabetes_risk:1")
    patient = {
        "Pregnancies": 6,
        "Glucose": 148.0,
        "BloodPressure": 72.0,
        "SkinThickness": 35.0,
        "Insulin": None,
        "BMI": 33.6,
        "DiabetesPedigreeFunction": 0.627,
        "Age": 50,
    }
    result = predictor.predict_one(patient)
    check = tabular.kernel_check(predictor, result)
    assert check["agrees"] and check["rank_corr"] >= 0.8 and check["shared"] >= 2 and check["seconds"] > 0
    names = list(result.contributions)
    result.contributions = dict(zip(names, [result.contributions[n] for n in reversed(names)]))  # wrong features
    assert not tabular.kernel_check(predictor, result)["agrees"]
