"""Train an image classifier on a labeled folder (one subfolder per class) and register it.

The data's journey, one function per step:

1. ``datasets.scan_labeled_folder``  folder -> LabeledDataset (files, labels)
2. ``load_prepared``                 files -> (N, S, S, 1) model inputs via the preprocessing recipe
3. ``datasets.split_by_patient``     patient-wise, stratified train / validation indices
4. ``fitting.fit``                   augmented batches -> CNN, early stopping on validation AUC
5. ``holdout.choose_threshold``      operating threshold on clean and perturbed validation films
6. ``register``                      staging folder -> meta.json, OOD detector, card -> atomic commit
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError, LucidDxError
from core.i18n import _
from core.imaging import datasets, fitting, holdout, ood, preprocessing, pretraining
from core.imaging import members as members_mod
from core.imaging import network as network_mod
from core.imaging.door import load_image
from core.imaging.fitting import CancelFn, ProgressFn
from core.imaging.train_config import TrainConfig, TrainResult, check_members
from core.models import kinds, provenance, registry
from core.models.thresholds import THRESHOLD_RULES

__all__ = [
    "RECIPE",
    "PreparedData",
    "TrainConfig",
    "TrainResult",
    "build_meta",
    "check_members",
    "load_prepared",
    "prepare_dataset",
    "register",
    "train_image_model",
    "write_card",
]

RECIPE = holdout.RECIPE


@dataclass
class PreparedData:
    """A dataset decoded once: model inputs (N, S, S, 1) and the resized films (N, S, S), in [0, 1]."""

    dataset: datasets.LabeledDataset
    inputs: np.ndarray
    resized: np.ndarray
    positive: int | None


def load_prepared(
    files: list[Path], size: int, method: str, progress: ProgressFn | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Decode and prepare images: (prepared (N, S, S, 1), resized (N, S, S), ok mask (N,), skipped)."""
    preprocessing.check_recipe(method)
    prepared = np.zeros((len(files), size, size, 1), dtype=np.float32)
    resized = np.zeros((len(files), size, size), dtype=np.float32)
    ok = np.zeros(len(files), dtype=bool)
    skipped: list[dict[str, str]] = []
    for i, path in enumerate(files):
        try:
            image = load_image(path)
        except LucidDxError as exc:
            skipped.append({"file": path.name, "error": str(exc)})
            continue
        resized[i] = preprocessing.resize_square(image.pixels, size)
        prepared[i, ..., 0] = preprocessing.finish(resized[i], method)
        ok[i] = True
        if progress and (i % 200 == 0 or i == len(files) - 1):
            progress({"event": "loading", "done": i + 1, "total": len(files)})
    return prepared, resized, ok, skipped


def prepare_dataset(data_dir: Path, config: TrainConfig, progress: ProgressFn | None) -> PreparedData:
    """Steps 1-2: list, decode and prepare; drop unreadable files; resolve the positive class."""
    dataset = datasets.scan_labeled_folder(Path(data_dir), config.max_images_per_class, config.seed)
    inputs, resized, ok, skipped = load_prepared(dataset.files, config.image_size, RECIPE, progress)
    dataset = dataset.keep(ok, skipped)
    datasets.require_enough_images(dataset, str(data_dir))
    classes = dataset.classes
    positive_class = config.positive_class or (classes[1] if len(classes) == 2 else None)
    if positive_class is not None and positive_class not in classes:
        raise InvalidDatasetError(
            _("Positive class '{positive_class}' is not one of the class folders {classes}.").format(
                positive_class=positive_class, classes=classes
            )
        )
    return PreparedData(dataset, inputs[ok], resized[ok], classes.index(positive_class) if positive_class else None)


def build_meta(
    name: str,
    data: PreparedData,
    config: TrainConfig,
    record: dict[str, Any],
    validation: dict[str, Any],
    detector: ood.OodDetector,
    val_ood_rate: float,
    inference,
) -> dict[str, Any]:
    """Everything about the new version: classes, operating point, recipe, training record, OOD."""
    from core.imaging.tfsetup import keras, tf

    classes = data.dataset.classes
    return {
        "name": name,
        "version": "",
        "kind": kinds.IMAGE_CLASSIFIER,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "architecture": members_mod.architecture(config, inference.count_params(), record.get("snapshots_per_member")),
        "model_file": "model.keras",
        "classes": classes,
        "positive_class": classes[data.positive] if data.positive is not None else None,
        "threshold": validation.get("threshold"),
        "threshold_rule": THRESHOLD_RULES[config.threshold_rule],
        "temperature": validation.get("temperature"),
        "input": {"size": config.image_size, "channels": 1, "preprocessing": RECIPE},
        "training": record,
        "validation": validation,
        "ood": {"method": ood.METHOD, "threshold": detector.threshold_, "validation_flag_rate": val_ood_rate},
    }


def register(
    name: str,
    meta: dict[str, Any],
    inference,
    detector: ood.OodDetector,
    predictions: dict[str, np.ndarray],
    data_dir: Path,
    activate: bool,
) -> registry.ModelRef:
    """Step 6: write the version into a staging folder and commit it atomically (nothing on failure)."""
    staging = registry.new_staging_dir()
    try:
        inference.save(staging / "model.keras")
        detector.save(staging)
        np.savez(staging / "validation_predictions.npz", **predictions)
        meta.update(provenance.carried_metadata(provenance.find_description(data_dir)))
        registry.write_json_atomic(staging / registry.META_FILE, meta)
        write_card(staging)
        return registry.commit_version(staging, name, activate_it=activate)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_card(model_dir: Path) -> None:
    """Compute the new version's model card from its meta.json and validation predictions."""
    from core.models import cards

    cards.write_card(model_dir)


def _training_record(
    data_dir: Path,
    config: TrainConfig,
    data: PreparedData,
    split: tuple[np.ndarray, np.ndarray],
    device: str,
    history: dict[str, list[float]],
    started: float,
    command: str | None,
) -> dict[str, Any]:
    by_patient = datasets.split_groups(data.dataset, config.validation_fraction)[1]
    return {
        "command": command,
        "data": str(data_dir),
        "config": asdict(config),
        "device": device,
        "seconds": round(time.monotonic() - started, 1),
        "epochs_run": len(history.get("loss", [])),
        "history": history,
        "class_counts": data.dataset.counts(),
        "train_images": int(len(split[0])),
        "validation_images": int(len(split[1])),
        "split": "stratified by class, grouped by patient (from file names)"
        if by_patient
        else "stratified by class, by file (the file names name no patients)",
        "skipped": datasets.redacted(data.dataset.skipped),  # stored: never a file name
    }


def train_image_model(
    data_dir: Path,
    name: str,
    config: TrainConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    command: str | None = None,
    activate: bool = False,
    recipe: dict[str, Any] | None = None,
) -> TrainResult:
    """Train, choose the operating threshold, and register ``name``'s next version.

    ``recipe``: how ``config`` was chosen from the data (``recipes.Recipe.as_dict``), kept in meta.json.

    Raises:
        InvalidDatasetError: the folder cannot train a classifier (one class, too few images...).
        TrainingCancelledError: ``cancel()`` returned True; nothing was registered.
    """
    from core.imaging.tfsetup import keras

    registry.check_model_name(name)
    config, started = config or TrainConfig(), time.monotonic()
    keras.utils.set_random_seed(config.seed)
    data = prepare_dataset(Path(data_dir), config, progress)
    labels, n_classes = data.dataset.labels, len(data.dataset.classes)
    train_idx, val_idx = datasets.split_by_patient(data.dataset, config.validation_fraction, config.seed)
    tune_idx, hold_idx = holdout.split_validation(data.dataset, val_idx, config.seed)
    device, strategy = network_mod.choose_device()
    steps = fitting.steps_per_epoch(len(train_idx), config.batch_size)
    if progress:
        progress(
            {
                "event": "started",
                "device": device,
                "classes": data.dataset.counts(),
                "train_images": int(len(train_idx)),
                "validation_images": int(len(val_idx)),
                "epochs": config.epochs * config.members,
                "steps": steps,
                "members": config.members,
                "pretrain_epochs": config.pretrain_epochs * len(config.trunks()),
            }
        )
    members, widths, history = [], [], {}
    origins: list[tuple[int, int | None]] = []  # (member, snapshot) of every kept set of weights, 1-based
    per_member: list[int] = []
    pretrained, pretrain_record = pretraining.pretrain_trunks(  # every trunk before any fit: one phase, then the next
        data.inputs[train_idx],
        n_classes,
        config.image_size,
        config.trunks() if config.pretrain_epochs else [],
        pretraining.PretrainSettings(config.pretrain_epochs, config.batch_size * 2, config.learning_rate, config.seed),
        progress,
        cancel,
    )
    for m in range(config.members):
        settings = config.fit_settings(m)
        network, trainer = fitting.compile_trainer(
            settings, config.image_size, n_classes, strategy, steps, start_weights=pretrained.get(settings.widths)
        )
        snapshots: list = []
        member_history = fitting.fit(
            trainer,
            settings,
            n_classes,
            (data.inputs[train_idx], labels[train_idx]),
            (data.inputs[tune_idx], labels[tune_idx]),
            data.positive,
            members_mod.member_progress(progress, m, config, len(history.get("loss", []))),
            cancel,
            network,
            snapshots,
        )
        kept = snapshots[-config.ensemble :] if config.snapshots and snapshots else [network.get_weights()]
        members += kept
        widths += [settings.widths] * len(kept)
        origins += members_mod.weight_origins(m, len(snapshots) if config.snapshots else 0, len(kept))
        per_member.append(len(kept))
        for key, values in member_history.items():
            history.setdefault(key, []).extend(values)
    if progress:
        progress({"event": "evaluating", "epochs_run": len(history.get("loss", []))})
    inference = members_mod.calibrated_model(
        members, config, n_classes, data.inputs[tune_idx], labels[tune_idx], widths
    )
    infer = holdout.feature_scorer(inference)
    validation = holdout.choose_threshold(
        infer,
        (data.resized[tune_idx], labels[tune_idx]),
        (data.resized[hold_idx], labels[hold_idx]),
        data.positive,
        config.threshold_rule,
    )
    validation["temperature"] = inference.temperature_
    val_probs, val_feats = infer(data.inputs[hold_idx])
    detector = ood.OodDetector.fit(infer(data.inputs[train_idx])[1])
    val_ood_rate = float(np.mean(detector.score(val_feats) > detector.threshold_))
    record = _training_record(Path(data_dir), config, data, (train_idx, val_idx), device, history, started, command)
    record.update(
        tuning_images=int(len(tune_idx)),
        holdout_images=int(len(hold_idx)),
        snapshots_kept=len(members),
        snapshots_per_member=per_member,
    )
    if pretrain_record:
        record["pretraining"] = pretrain_record
    if config.members > 1 and data.positive is not None:
        hold = (data.resized[hold_idx], labels[hold_idx])
        record["members"] = holdout.member_figures(
            members, widths, config.image_size, n_classes, hold, data.positive, origins
        )
    meta = build_meta(name, data, config, record, validation, detector, val_ood_rate, inference)
    if recipe is not None:
        meta["recipe"] = recipe
    predictions = {
        "labels": labels[hold_idx],
        "probabilities": val_probs,
        "subgroups": np.asarray([holdout.subgroup(data.dataset.files[i]) for i in hold_idx]),
    }
    ref = register(name, meta, inference, detector, predictions, Path(data_dir), activate)
    return TrainResult(
        model=ref.spec,
        device=device,
        seconds=round(time.monotonic() - started, 1),
        epochs=record["epochs_run"],
        dataset={"classes": data.dataset.counts(), "skipped": data.dataset.skipped},
        validation=validation,
        recipe=recipe,
    )
