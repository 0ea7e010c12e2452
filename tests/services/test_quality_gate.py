"""The quality gate before activation, with real models on real data.

Risk models (fast): a good candidate passes, one trained on label-swapped outcomes fails, an override
is audited with its reason kept in the activation record, the CLI's exit codes, roles. Image models:
the bundled chest X-ray model on a locked set of real films, a changed film refusing the gate.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.access import audit as audit_log
from core.errors import EvalSetError, GateFailedError, InvalidDatasetError, PermissionDeniedError
from core.models import eval_sets as eval_set_store
from core.models import gate as gate_mod
from core.models import registry
from core.services import activation, audit, eval_sets
from core.tabular import training
from tests.conftest import DATA_ROOT
from tests.imaging.test_training import real_subset

ROOT = Path(__file__).resolve().parents[2]
BREAST = DATA_ROOT / "tabular" / "Breast_cancer_dataset.csv"
FAST = {"folds": 3, "families": ("logistic",), "n_bootstrap": 3}
ADMIN = audit.Actor("ada", "admin")
RESEARCHER = audit.Actor("rey", "researcher")


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def risk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """wdbc:1 trained on 2/3 of the rows, the other third in a data root as the evaluation set."""
    with BREAST.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    train_rows, eval_rows = [rows[i] for i in order[:380]], [rows[i] for i in order[380:]]
    roots = tmp_path / "data"
    roots.mkdir()
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(roots))
    target = header.index("diagnosis")
    swapped = [r[:target] + [{"M": "B", "B": "M"}[r[target]]] + r[target + 1:] for r in train_rows]
    paths = {"train": _write(tmp_path / "train.csv", [header, *train_rows]),
             "swapped": _write(tmp_path / "swapped.csv", [header, *swapped]),
             "eval": _write(roots / "eval.csv", [header, *eval_rows])}
    training.train_risk_model(paths["train"], "wdbc", target="diagnosis", positive="M", command="test", **FAST)
    return paths


def _train(path: Path) -> str:
    return training.train_risk_model(path, "wdbc", target="diagnosis", positive="M", activate=False, **FAST)["model"]


def test_a_good_candidate_passes_and_its_activation_is_audited(risk_home: dict[str, Path]) -> None:
    locked = eval_sets.lock(ADMIN, "wdbc", risk_home["eval"])
    assert locked["n"] == 189 and 0.2 < locked["prevalence"] < 0.6 and "items" not in locked
    stored = json.loads(eval_set_store.path_for("wdbc").read_text())
    assert len(stored["items"]) == 189 and all(len(i["sha256"]) == 64 for i in stored["items"])
    assert "eval.csv" not in json.dumps(stored["items"])
    candidate = _train(risk_home["train"])
    assert registry.active_version("wdbc").spec == "wdbc:1"
    done = activation.activate(ADMIN, "wdbc", candidate.split(":")[1])
    gate = done["gate"]
    assert gate["status"] == "passed" and gate["margin"] == 0.02 and gate["n"] == 189
    assert gate["active"]["model"] == "wdbc:1" and gate["candidate"]["model"] == candidate
    assert gate["candidate"]["auc"]["value"] > 0.95
    low, high = gate["auc_difference"]["ci95"]
    assert low > -0.02 and low <= gate["auc_difference"]["value"] <= high
    for side in (gate["candidate"], gate["active"]):
        assert side["sensitivity"]["ci95"][0] <= side["sensitivity"]["value"] <= side["sensitivity"]["ci95"][1]
        assert side["threshold_source"] == "stored"
    assert registry.active_version("wdbc").spec == candidate
    last = audit_log.records(action="activate")[-1]
    assert (last.user, last.outcome, last.model) == ("ada", "gate-passed", candidate)
    assert last.input_sha256 == hashlib.sha256(Path(done["activation_record"]).read_bytes()).hexdigest()
    assert audit_log.records(action="eval-set")[-1].input_sha256 == locked["fingerprint"]


def test_a_label_swapped_candidate_fails_and_an_override_keeps_its_reason(risk_home: dict[str, Path]) -> None:
    eval_sets.lock(ADMIN, "wdbc", risk_home["eval"])
    bad = _train(risk_home["swapped"])
    with pytest.raises(GateFailedError, match="was not activated") as refused:
        activation.activate(ADMIN, "wdbc", bad.split(":")[1])
    gate = refused.value.gate
    assert gate["status"] == "failed" and gate["candidate"]["auc"]["value"] < 0.2
    assert gate["auc_difference"]["ci95"][0] < -0.5
    assert "AUC" in str(refused.value) and f"{gate['candidate']['auc']['value']:.3f}" in str(refused.value)
    assert registry.active_version("wdbc").spec == "wdbc:1"
    assert audit_log.records(action="activate")[-1].outcome == "failed"

    done = activation.activate(ADMIN, "wdbc", bad.split(":")[1], override_reason="  outcome coding audit, see ticket 42 ")
    assert done["override"] and registry.active_version("wdbc").spec == bad
    kept = json.loads(Path(done["activation_record"]).read_text())
    assert kept["override_reason"] == "outcome coding audit, see ticket 42" and kept["gate"]["status"] == "failed"
    last = audit_log.records(action="activate")[-1]
    assert last.outcome == "override" and last.input_sha256 == hashlib.sha256(
        Path(done["activation_record"]).read_bytes()).hexdigest()
    assert [a["model"] for a in gate_mod.activations("wdbc")] == [bad]
    assert audit_log.verify().ok


def test_without_a_locked_set_the_gate_does_not_run_and_activation_needs_an_override(risk_home) -> None:
    candidate = _train(risk_home["train"])
    assert activation.run_gate("wdbc", candidate.split(":")[1])["status"] == "not-run"
    with pytest.raises(GateFailedError, match="No evaluation set is locked"):
        activation.activate(ADMIN, "wdbc", candidate.split(":")[1])
    assert activation.activate(ADMIN, "wdbc", "1", override_reason="roll back to the first version")["override"]


def test_a_changed_row_refuses_the_gate(risk_home: dict[str, Path]) -> None:
    eval_sets.lock(ADMIN, "wdbc", risk_home["eval"])
    candidate = _train(risk_home["train"])
    text = risk_home["eval"].read_text().splitlines()
    cells = text[5].split(",")
    cells[3] = str(float(cells[3]) + 1)
    risk_home["eval"].write_text("\n".join(text[:5] + [",".join(cells)] + text[6:]) + "\n")
    with pytest.raises(EvalSetError, match=r"changed since ada locked it.*1 locked case\(s\) are missing or changed"):
        activation.activate(ADMIN, "wdbc", candidate.split(":")[1])
    assert registry.active_version("wdbc").spec == "wdbc:1"


def test_only_administrators_lock_sets_and_activate(risk_home: dict[str, Path]) -> None:
    with pytest.raises(PermissionDeniedError, match="administrator"):
        eval_sets.lock(RESEARCHER, "wdbc", risk_home["eval"])
    candidate = _train(risk_home["train"])
    with pytest.raises(PermissionDeniedError):
        activation.activate(RESEARCHER, "wdbc", candidate.split(":")[1], override_reason="I am sure")
    assert registry.active_version("wdbc").spec == "wdbc:1" and eval_sets.show("wdbc") is None


def test_sets_outside_the_data_roots_are_refused(risk_home: dict[str, Path]) -> None:
    with pytest.raises(InvalidDatasetError, match="outside the folders"):
        eval_sets.lock(ADMIN, "wdbc", risk_home["train"])


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LUCIDDX_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, input=stdin)


def test_cli_exit_codes_and_train_risk_activate_through_the_gate(risk_home, isolated_home) -> None:
    assert _cli(isolated_home, "eval-set", "show", "--model", "wdbc", "--json").returncode == 1
    locked = _cli(isolated_home, "eval-set", "lock", "--model", "wdbc", "--data", str(risk_home["eval"]), "--json")
    assert locked.returncode == 0, locked.stderr
    shown = json.loads(_cli(isolated_home, "eval-set", "show", "--model", "wdbc", "--json").stdout)
    assert shown["n"] == 189 and shown["fingerprint"] == json.loads(locked.stdout)["fingerprint"]

    trained = _cli(isolated_home, "train-risk", "--csv", str(risk_home["swapped"]), "--target", "diagnosis",
                   "--positive", "M", "--name", "wdbc", "--folds", "3", "--families", "logistic", "--activate", "--json")
    assert trained.returncode == 0, trained.stderr  # training succeeded; activation was refused
    out = json.loads(trained.stdout)
    assert out["model"] == "wdbc:2" and out["active"] is False
    assert out["activation"]["activated"] is False and out["activation"]["gate"]["status"] == "failed"
    assert "was not activated" in out["activation"]["reason"]

    refused = _cli(isolated_home, "activate", "wdbc:2", "--json")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    body = json.loads(refused.stdout)
    assert body["active"] is False and body["gate"]["status"] == "failed" and "AUC" in body["error"]
    assert _cli(isolated_home, "activate", "wdbc:2", "--override").returncode == 2
    forced = _cli(isolated_home, "activate", "wdbc:2", "--override", "--reason", "vendor recall drill, checked by the safety officer")
    assert forced.returncode == 0 and "override" in forced.stdout and "quality gate: failed" in forced.stdout
    assert _cli(isolated_home, "activate", "wdbc:1", "--json").returncode == 0  # roll back: passes the gate
    outcomes = [r["outcome"] for r in json.loads(_cli(isolated_home, "audit", "--action", "activate", "--json").stdout)]
    assert outcomes == ["failed", "failed", "override", "gate-passed"]


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("roots") / "site_films", per_class=8, seed=7)


def _copy_of_bundled() -> registry.ModelRef:
    bundled = registry.resolve("chest_xray")
    staging = registry.new_staging_dir()
    shutil.copytree(bundled.path, staging, dirs_exist_ok=True)
    return registry.commit_version(staging, "chest_xray")


def test_image_gate_on_real_films_and_a_changed_film_refuses(films: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "films"
    shutil.copytree(films, data)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path))
    locked = eval_sets.lock(ADMIN, "chest_xray", data)
    assert locked["labels"] == {"NORMAL": 8, "PNEUMONIA": 8} and locked["prevalence"] == 0.5
    copy = _copy_of_bundled()
    gate = activation.run_gate("chest_xray", copy.version)
    # The same weights on the same films: identical scores, a difference of exactly zero.
    assert gate["status"] == "passed" and gate["auc_difference"]["value"] == 0.0
    assert gate["candidate"]["auc"]["value"] == gate["active"]["auc"]["value"] > 0.8
    victim = sorted((data / "NORMAL").glob("*.jpeg"))[0]
    shutil.move(victim, data / "PNEUMONIA" / victim.name)  # a relabeled film is a changed case
    with pytest.raises(EvalSetError, match="1 locked case"):
        activation.run_gate("chest_xray", copy.version)
    (data / "PNEUMONIA" / victim.name).unlink()
    with pytest.raises(EvalSetError, match="1 locked case"):
        activation.activate(ADMIN, "chest_xray", copy.version)


def test_an_unreadable_film_cannot_be_locked(films: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "films"
    shutil.copytree(films, data)
    (data / "NORMAL" / "broken.png").write_bytes(b"not a film")
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path))
    with pytest.raises(EvalSetError, match="only readable films"):
        eval_sets.lock(ADMIN, "chest_xray", data)
    assert eval_sets.show("chest_xray") is None


def test_the_margin_decides_at_the_lower_end_of_the_interval() -> None:
    rng = np.random.default_rng(1)
    is_positive = np.repeat([True, False], 200)
    good = np.clip(is_positive * 0.6 + rng.normal(0.2, 0.15, 400), 0, 1)
    slightly_worse = np.clip(good + rng.normal(0, 0.08, 400), 0, 1)
    record = {"fingerprint": "f" * 64, "n": 400, "prevalence": 0.5}
    side = lambda spec, s: gate_mod.Scored(spec, s, 0.5, "stored")  # noqa: E731
    tight = gate_mod.compare(is_positive, side("m:2", slightly_worse), side("m:1", good), record, margin=0.0)
    loose = gate_mod.compare(is_positive, side("m:2", slightly_worse), side("m:1", good), record, margin=0.5)
    assert tight["auc_difference"]["ci95"][0] < 0 and tight["status"] == "failed" and loose["status"] == "passed"
