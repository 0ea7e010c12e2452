"""The bundled chest X-ray model, measured on real films it never trained on.

Its validation split is rebuilt from the seed and fraction stored in meta.json, patient-wise,
so these images (and every other film of the same children) were never trained on.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.imaging import preprocessing
from core.imaging.classifier import load_classifier
from core.imaging.door import load_image
from core.imaging.datasets import patient_group, scan_labeled_folder, split_by_patient
from core.imaging.perturbations import PERTURBATIONS, perturb
from tests.conftest import CHEST_XRAY_TRAIN

SAMPLE_PER_CLASS = 120
STATED_AUC = 0.95
STATED_ACCURACY = 0.88


@pytest.fixture(scope="module")
def validation_sample():
    model = load_classifier("chest_xray")
    cfg = model.ref.meta["training"]["config"]
    dataset = scan_labeled_folder(CHEST_XRAY_TRAIN, cfg["max_images_per_class"], cfg["seed"])
    train_idx, val_idx = split_by_patient(dataset, cfg["validation_fraction"], cfg["seed"])
    rng = np.random.default_rng(0)
    chosen = np.concatenate([rng.choice(val_idx[dataset.labels[val_idx] == k], SAMPLE_PER_CLASS, replace=False) for k in (0, 1)])
    raw = np.stack([preprocessing.resize_square(load_image(dataset.files[i]).pixels, model.input_size) for i in chosen])
    return model, dataset, train_idx, val_idx, chosen, raw


def test_validation_patients_never_appear_in_training(validation_sample):
    _, dataset, train_idx, val_idx, _, _ = validation_sample
    train_patients = {patient_group(dataset.files[i]) for i in train_idx}
    assert not train_patients & {patient_group(dataset.files[i]) for i in val_idx}


def test_bundled_model_beats_stated_auc_and_accuracy(validation_sample):
    model, dataset, _, _, chosen, raw = validation_sample
    x = np.stack([preprocessing.equalize_histogram(r) for r in raw])[..., None]
    probs, _ = model.predict_inputs(x)
    positive = model.classes.index(model.positive_class)
    is_pos = dataset.labels[chosen] == positive
    assert roc_auc_score(is_pos, probs[:, positive]) >= STATED_AUC
    balanced_accuracy = ((probs[is_pos, positive] >= model.threshold).mean() + (probs[~is_pos, positive] < model.threshold).mean()) / 2
    assert balanced_accuracy >= STATED_ACCURACY


@pytest.mark.parametrize("kind", [k for k in PERTURBATIONS if k != "clean"])
def test_auc_holds_under_acquisition_changes(validation_sample, kind):
    model, dataset, _, _, chosen, raw = validation_sample
    x = np.stack([preprocessing.equalize_histogram(r) for r in perturb(raw, kind)])[..., None]
    probs, _ = model.predict_inputs(x)
    positive = model.classes.index(model.positive_class)
    assert roc_auc_score(dataset.labels[chosen] == positive, probs[:, positive]) >= 0.93
