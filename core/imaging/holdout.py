"""What a trained network is measured with: the held-out half of the validation patients, clean and
under every simulated acquisition change.

The validation patients are halved (``split_validation``): the tuning half picks the epoch, temperature
and threshold (``choose_threshold``), the held-out half only measures the result, for the registered
model and for each member of a deep ensemble alone (``member_figures``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError
from core.i18n import _
from core.imaging import datasets, preprocessing
from core.imaging import network as network_mod
from core.imaging.perturbations import PERTURBATIONS, perturb
from core.models.metrics import auc_score, binary_metrics, multiclass_auc
from core.models.thresholds import ROBUST_YOUDEN, rule_threshold

RECIPE = preprocessing.HISTEQ_V1
"""The preprocessing every network trained here reads (stored in its meta.json's ``input``)."""


def split_validation(dataset: datasets.LabeledDataset, val_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation patients halved: (tuning indices, held-out indices), both into ``dataset``.

    Tuning films pick the epoch, temperature and threshold; held-out films only measure the result.
    With too few patients to halve, both are the whole validation set (the card then says its figures
    come from the films that also chose the threshold).
    """
    subset = dataset.keep(np.isin(np.arange(len(dataset.files)), val_idx))
    try:
        tune, hold = datasets.split_by_patient(subset, 0.5, seed)
    except InvalidDatasetError:
        return val_idx, val_idx
    ordered = np.sort(val_idx)
    return ordered[tune], ordered[hold]


def recorded_split(meta: dict[str, Any], data: Path) -> tuple[datasets.LabeledDataset, np.ndarray, np.ndarray]:
    """(dataset, tuning indices, held-out indices) of the training folder ``data``, exactly as the version
    whose meta.json is ``meta`` drew them at training (same image cap, fraction and seed).

    Raises:
        InvalidDatasetError: the version kept no held-out films apart, or ``data`` no longer yields the
            number of held-out films its meta recorded (another folder, or films added or removed).
    """
    config = meta["training"]["config"]
    dataset = datasets.scan_labeled_folder(data, config.get("max_images_per_class"), config["seed"])
    _train, val_idx = datasets.split_by_patient(dataset, config["validation_fraction"], config["seed"])
    tune, hold = split_validation(dataset, val_idx, config["seed"])
    expected = meta["training"].get("holdout_images")
    if not expected or expected != len(hold) or len(hold) == len(val_idx):
        raise InvalidDatasetError(
            _(
                "{name}:{version}'s held-out films cannot be rebuilt from {folder}: it gives {have} where the "
                "version recorded {expected}. Point at the folder the version was trained on, unchanged."
            ).format(name=meta.get("name"), version=meta.get("version"), folder=data, have=len(hold), expected=expected)
        )
    return dataset, tune, hold


def feature_scorer(inference):
    """batch (N, S, S, 1) -> (probabilities (N, K), pooled features (N, F)), float64."""
    from core.imaging.tfsetup import keras

    model = keras.Model(
        inference.inputs, [inference.outputs[0], inference.get_layer(network_mod.FEATURES_LAYER).output]
    )

    def infer(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, feats = model.predict(batch, batch_size=64, verbose=0)
        return np.asarray(probs, dtype=np.float64), np.asarray(feats, dtype=np.float64)

    return infer


def perturbed_scores(infer, resized: np.ndarray, positive: int) -> dict[str, np.ndarray]:
    """The positive class's probability on each simulated acquisition change of ``resized`` films."""
    out = {}
    for i, kind in enumerate(PERTURBATIONS):
        x_kind = np.stack([preprocessing.finish(r, RECIPE) for r in perturb(resized, kind, seed=i)])[..., None]
        out[kind] = infer(x_kind)[0][:, positive]
    return out


def choose_threshold(
    infer,
    tune: tuple[np.ndarray, np.ndarray],
    holdout: tuple[np.ndarray, np.ndarray],
    positive: int | None,
    rule: str = ROBUST_YOUDEN,
) -> dict[str, Any]:
    """Step 5: the threshold from the tuning films (clean and perturbed), measured on the held-out films.

    ``tune`` and ``holdout`` are (resized films (N, S, S), labels (N,)) from disjoint patients, so the
    reported accuracy, sensitivity and specificity are not scored on the films that chose the cut.
    """
    (resized_tune, y_tune), (resized_hold, y_hold) = tune, holdout
    x_hold = np.stack([preprocessing.finish(r, RECIPE) for r in resized_hold])[..., None]
    hold_probs = infer(x_hold)[0]
    validation: dict[str, Any] = {
        "n": int(len(y_hold)),
        "auc": multiclass_auc(y_hold, hold_probs, positive),
        "tuning_n": int(len(y_tune)),
    }
    if positive is None:
        validation["accuracy"] = float((hold_probs.argmax(1) == y_hold).mean())
        return validation
    tuning = perturbed_scores(infer, resized_tune, positive)
    threshold = rule_threshold(rule, np.stack([y_tune == positive] * len(tuning)), np.stack(list(tuning.values())))
    held = perturbed_scores(infer, resized_hold, positive)
    at_threshold = binary_metrics(y_hold == positive, hold_probs[:, positive], threshold)
    validation.update(
        {k: at_threshold[k] for k in ("accuracy", "sensitivity", "specificity")},
        threshold=threshold,
        robustness_auc={kind: auc_score(y_hold == positive, sc) for kind, sc in held.items()},
    )
    return validation


def member_figures(
    members: list,
    widths: list[tuple[int, ...]],
    image_size: int,
    n_classes: int,
    holdout: tuple[np.ndarray, np.ndarray],
    positive: int,
    origins: list[tuple[int, int | None]] | None = None,
) -> list[dict[str, Any]]:
    """Each member (each kept snapshot of it, with ``--ensemble``) alone on the held-out films, clean and under
    every simulated acquisition change: what the ensemble is measured against in the same run. ``origins``:
    the (member, snapshot) of each set of weights, so an entry says which network it is."""
    resized, y = holdout
    x = np.stack([preprocessing.finish(r, RECIPE) for r in resized])[..., None]
    origins = origins or [(i + 1, None) for i in range(len(members))]
    figures = []
    for weights, member_widths, (member, snapshot) in zip(members, widths, origins, strict=True):
        single = network_mod.build_single(image_size, n_classes, [weights], widths=member_widths)
        infer = feature_scorer(single)
        shifted = {
            kind: auc_score(y == positive, sc) for kind, sc in perturbed_scores(infer, resized, positive).items()
        }
        figures.append(
            {
                "member": member,
                **({"snapshot": snapshot} if snapshot is not None else {}),
                "widths": list(member_widths),
                "parameters": int(single.count_params()),
                "auc": auc_score(y == positive, infer(x)[0][:, positive]),
                "robustness_auc": shifted,
                "worst_auc": min(shifted.values()),
            }
        )
    return figures


def subgroup(path: Path) -> str:
    """Pneumonia aetiology from Kermany-style names (bacteria/virus); 'unspecified' otherwise."""
    lowered = path.name.lower()
    for tag in ("bacteria", "virus"):
        if f"_{tag}" in lowered:
            return tag
    return "unspecified"
