"""Risk models served by Ray Serve (issue 23 item 2) on a real embedded Ray: a patient scored by the replica
equals the in-process result, versions of any risk model share the replicas (multiplexed), an activation
loads the new version ahead of its first patient, and a model that cannot be served is a clear error."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.services import tabular
from tests.conftest import DIABETES_CSV


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Replicas read the registry of the home the engine was joined with: one home for the module, set before
    # the engine starts, so a version trained here is one the replicas can load.
    home = tmp_path_factory.mktemp("served_risk") / "luciddx_home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUCIDDX_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def isolated_home(module_home: Path) -> Path:
    return module_home


@pytest.fixture(scope="module")
def served_risk(module_home, embedded_engine) -> Iterator[None]:
    from core.engine import serving

    yield
    serving.shutdown()


def _patients(n: int) -> list[dict[str, str]]:
    with DIABETES_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    # Pima records an unmeasured value as 0; the form takes it blank (imputed), as a clinician would leave it.
    unmeasured = {"Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"}
    return [{k: ("" if k in unmeasured and v == "0" else v) for k, v in row.items() if k != "Outcome"} for row in rows]


def test_a_patient_scored_by_the_replica_equals_the_in_process_result(served_risk, monkeypatch) -> None:
    from core.services import archive

    local_predictor = tabular.load("diabetes_risk")
    monkeypatch.setenv("LUCIDDX_SERVE", "on")
    served_predictor = tabular.load("diabetes_risk")
    assert isinstance(served_predictor, tabular.ServedRiskPredictor)
    for values in _patients(3):
        local = tabular.score_patient(local_predictor, values)
        remote = tabular.score_patient(served_predictor, values)
        assert local.ok and remote.ok
        assert remote.result.risk == pytest.approx(local.result.risk, abs=1e-9)
        assert remote.result.risk_interval == pytest.approx(local.result.risk_interval, abs=1e-9)
        for name, value in local.result.contributions.items():
            assert remote.result.contributions[name] == pytest.approx(value, abs=1e-9)
    # A CSV batch goes through the same replica, with the bad row still reported alone.
    lines = DIABETES_CSV.read_text().splitlines()[:41]
    rows = tabular.score_rows_of("\n".join(lines).encode(), served_predictor, "pima.csv")
    local_rows = tabular.score_rows_of("\n".join(lines).encode(), local_predictor, "pima.csv")
    assert len(rows) == 40 and [r["ok"] for r in rows] == [r["ok"] for r in local_rows] and any(r["ok"] for r in rows)
    assert [r.get("risk") for r in rows] == pytest.approx([r.get("risk") for r in local_rows])
    # `python -m core risk` scores its CSV through the replica too.
    assert [r.get("risk") for r in tabular.score_csv("\n".join(lines).encode(), "diabetes_risk:1", "pima.csv")] == (
        pytest.approx([r.get("risk") for r in local_rows])
    )
    listed = {(r["name"], r["model"]) for r in archive.engine_status()["deployments"]}
    assert ("luciddx-risk/RiskModel", "diabetes_risk:1") in listed


def test_an_activation_loads_the_version_beside_the_others_without_a_restart(served_risk, monkeypatch) -> None:
    import ray

    from core.engine import serving
    from core.models import registry
    from core.services import activation

    monkeypatch.setenv("LUCIDDX_SERVE", "on")
    assert "diabetes_risk:1" in serving.warm_risk("diabetes_risk:1", tabular.SERVED_WORK)

    def replicas() -> set[str]:
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "#RiskModel#" in a["name"]}

    before = replicas()
    assert activation._warm_served(registry.resolve("thyroid_risk:1")) is True
    held = {r["model"] for r in serving.deployments() if r["name"] == "luciddx-risk/RiskModel"}
    assert held >= {"diabetes_risk:1", "thyroid_risk:1"}
    assert replicas() == before and len(before) == 1


def test_a_risk_model_that_cannot_be_served_is_a_clear_error(served_risk) -> None:
    from core.engine import serving

    with pytest.raises(Exception) as caught:
        serving.score_patients("no_such_risk:7", [{"Age": "50"}], None, tabular.SERVED_WORK)
    assert "no_such_risk" in str(caught.value)


def test_activating_another_version_switches_the_served_answers(served_risk, monkeypatch, tmp_path) -> None:
    """Last in this module: it changes the active diabetes_risk version in the module's home."""
    from core.services import activation
    from core.tabular import training
    from core.tabular.predictor import load_risk_model

    monkeypatch.setenv("LUCIDDX_SERVE", "on")
    # A patient with every value measured: the tiny version, trained on the raw table, takes no blanks.
    values = next(p for p in _patients(20) if "" not in p.values())
    before = tabular.score_patient(tabular.load("diabetes_risk"), values).result
    # A second version fitted on a third of the table, so its answer for the same patient differs.
    third = tmp_path / "third.csv"
    third.write_text("\n".join(DIABETES_CSV.read_text().splitlines()[:257]) + "\n")
    spec = training.train_risk_model(
        third, "diabetes_risk", target="Outcome", families=("logistic",), folds=3, activate=False, n_bootstrap=10
    )["model"]
    done = activation.activate(None, *spec.split(":"), override_reason="a tiny version for the serving test only")
    assert done["served"] is True  # loaded by the replica before its first patient
    served = tabular.load("diabetes_risk")
    assert served.spec == spec
    after = tabular.score_patient(served, values).result
    local = tabular.score_patient(load_risk_model(spec), values).result
    assert after.model == spec and after.risk == pytest.approx(local.risk, abs=1e-9)
    assert before.model != spec and abs(after.risk - before.risk) > 1e-4
