"""Train an image classifier on a labeled folder (one subfolder per class) and register it.

The data's journey: folder -> LabeledDataset (files, labels, skipped) -> patient-wise split ->
prepared arrays (N, S, S, 1) in [0, 1] -> augmented batches -> CNN -> early stopping on validation
AUC -> operating threshold chosen on validation (clean and perturbed) -> staging folder -> atomic
registration with meta.json, OOD statistics and the model card.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from core.imaging import preprocessing
from core.models import kinds, provenance, registry
from core.models.metrics import auc_score, binary_metrics, multiclass_auc
from core.models.thresholds import robust_youden_threshold
from core.errors import InvalidDatasetError, LucidDxError, TrainingCancelledError
from core.imaging.door import load_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".dic", ""}
MIN_IMAGES_PER_CLASS = 5
ProgressFn = Callable[[dict[str, Any]], None]
CancelFn = Callable[[], bool]


@dataclass
class LabeledDataset:
    """Image files with integer labels; ``classes[label]`` is the folder name."""

    root: Path
    classes: list[str]
    files: list[Path]
    labels: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


@dataclass
class TrainConfig:
    epochs: int = 30
    image_size: int = 192
    batch_size: int = 32
    validation_fraction: float = 0.2
    learning_rate: float = 2e-3
    patience: int = 7
    seed: int = 1234
    positive_class: str | None = None
    init_from: str | None = None
    max_images_per_class: int | None = None




def _is_candidate_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def is_ignored_folder(path: Path) -> bool:
    """Folders that are never classes: hidden ones and archive debris such as __MACOSX."""
    return path.name.startswith((".", "__"))


def class_images(class_dir: Path) -> list[Path]:
    """The image files of one class folder (any depth), sorted, without hidden files or folders."""
    return sorted(
        p for p in class_dir.rglob("*")
        if _is_candidate_image(p) and not any(is_ignored_folder(Path(part)) for part in p.relative_to(class_dir).parts[:-1])
    )


def find_class_root(root: Path) -> Path:
    """The folder whose subfolders are the classes; a single wrapping folder is looked through."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDatasetError(f"{root}: not a folder. Give a folder with one subfolder per class.")
    current = root
    for _ in range(3):
        subdirs = [p for p in current.iterdir() if p.is_dir() and not is_ignored_folder(p)]
        loose_files = [p for p in current.iterdir() if _is_candidate_image(p)]
        if len(subdirs) == 1 and not loose_files:
            current = subdirs[0]
            continue
        break
    return current


def class_folders(root: Path, shown_as: str | None = None) -> tuple[Path, list[Path]]:
    """(the folder holding the classes, its class subfolders sorted by name); at least two.

    Raises:
        InvalidDatasetError: fewer than two class subfolders (``shown_as`` names the dataset).
    """
    class_root = find_class_root(Path(root))
    class_dirs = sorted(p for p in class_root.iterdir() if p.is_dir() and not is_ignored_folder(p))
    if len(class_dirs) < 2:
        found = ", ".join(p.name for p in class_dirs) or "none"
        raise InvalidDatasetError(
            f"{shown_as or root}: found {len(class_dirs)} class folder(s) ({found}); a classifier needs at "
            "least two subfolders, one per class, each holding that class's images."
        )
    return class_root, class_dirs


def scan_labeled_folder(root: Path, max_per_class: int | None = None, seed: int = 0) -> LabeledDataset:
    """List the images of a labeled folder. Raises InvalidDatasetError if it cannot train a model."""
    class_root, class_dirs = class_folders(root)
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        members = class_images(class_dir)
        if max_per_class is not None and len(members) > max_per_class:
            members = sorted(rng.choice(members, size=max_per_class, replace=False).tolist())
        files.extend(members)
        labels.extend([label] * len(members))
    dataset = LabeledDataset(class_root, [p.name for p in class_dirs], files, np.asarray(labels, dtype=np.int64))
    _require_enough_images(dataset, str(root))
    return dataset


def _require_enough_images(dataset: LabeledDataset, where: str) -> None:
    thin = {c: n for c, n in dataset.counts().items() if n < MIN_IMAGES_PER_CLASS}
    if thin:
        listing = ", ".join(f"'{c}' has {n}" for c, n in thin.items())
        raise InvalidDatasetError(
            f"{where}: too few usable images ({listing}); each class needs at least {MIN_IMAGES_PER_CLASS}."
        )


_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),  # Kermany pneumonia files: person12_bacteria_45
    re.compile(r"^((?:[A-Z0-9]+-)?IM-\d+)-", re.IGNORECASE),  # Kermany normals: IM-0115-0001, NORMAL2-IM-...
)


def patient_group(path: Path) -> str:
    """The patient a file belongs to, from its name; files with no recognisable patient stand alone."""
    stem = path.stem
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1).lower()
    generic = re.match(r"^(.+?)[-_ ]+(?:\d+|img\d+|view\d+)$", stem, re.IGNORECASE)
    return (generic.group(1) if generic else stem).lower()


def _n_splits(validation_fraction: float) -> int:
    return max(2, int(round(1.0 / validation_fraction)))


def split_groups(dataset: LabeledDataset, validation_fraction: float) -> tuple[np.ndarray, bool]:
    """Group of each file for the split, and whether the groups are patients read from file names.

    When a class has fewer name-derived patients than the split has folds (names such as scan_001 ...
    scan_040 all read as one patient), names carry no usable patient and every file stands alone.
    """
    groups = np.asarray([patient_group(p) for p in dataset.files])
    n_splits = _n_splits(validation_fraction)
    by_patient = all(len(np.unique(groups[dataset.labels == k])) >= n_splits for k in range(len(dataset.classes)))
    return (groups if by_patient else np.asarray([str(p) for p in dataset.files])), by_patient


def split_by_patient(dataset: LabeledDataset, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices with every patient's files on one side only."""
    groups, _ = split_groups(dataset, validation_fraction)
    splitter = StratifiedGroupKFold(n_splits=_n_splits(validation_fraction), shuffle=True, random_state=seed)
    try:
        train_idx, val_idx = next(splitter.split(np.zeros(len(groups)), dataset.labels, groups))
    except ValueError as exc:
        raise InvalidDatasetError(f"{dataset.root}: too few images to hold out a validation set; add images.") from exc
    if len(np.unique(dataset.labels[val_idx])) < len(dataset.classes):
        raise InvalidDatasetError(
            f"{dataset.root}: too few patients to give every class a validation image; add images."
        )
    return train_idx, val_idx


def load_prepared(
    files: list[Path], size: int, method: str, progress: ProgressFn | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Decode and prepare images: (prepared (N, S, S, 1), raw resized (N, S, S), ok mask, skipped)."""
    prepared = np.zeros((len(files), size, size, 1), dtype=np.float32)
    raw = np.zeros((len(files), size, size), dtype=np.float32)
    ok = np.zeros(len(files), dtype=bool)
    skipped: list[dict[str, str]] = []
    for i, path in enumerate(files):
        try:
            image = load_image(path)
        except LucidDxError as exc:
            skipped.append({"file": path.name, "error": str(exc)})
            continue
        raw[i] = preprocessing.resize_square(image.pixels, size)
        prepared[i, ..., 0] = preprocessing.equalize_histogram(raw[i]) if method == preprocessing.HISTEQ_V1 else raw[i]
        ok[i] = True
        if progress and (i % 200 == 0 or i == len(files) - 1):
            progress({"event": "loading", "done": i + 1, "total": len(files)})
    return prepared, raw, ok, skipped


def choose_device() -> tuple[str, Any]:
    """The strategy to train under: all GPUs mirrored, one GPU, or the CPU; plus its label."""
    from core.imaging.tfsetup import keras, tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return "CPU", tf.distribute.get_strategy()
    # float16 compute with float32 master weights: ~2x throughput on tensor-core GPUs.
    keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) > 1:
        return f"GPU:0-{len(gpus) - 1}", tf.distribute.MirroredStrategy()
    return "GPU:0", tf.distribute.OneDeviceStrategy("/gpu:0")


def build_network(size: int, n_classes: int, widths: tuple[int, ...] = (32, 64, 128, 192, 256)):
    """A compact separable-conv CNN: (S, S, 1) in [0, 1] -> (K,) softmax probabilities.

    The pooled vector is the layer named ``features`` (OOD detection reads it); the last conv layer
    is ``last_conv`` (Grad-CAM reads it); logits and softmax are separate so explainers can take
    the softmax off a copy.
    """
    from core.imaging.tfsetup import keras

    layers = keras.layers
    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        if i == 0:
            x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
        else:
            x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU(name="last_conv" if last else None)(x)
        if not last:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(0.4)(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="luciddx_cnn")


def build_augmentation(seed: int):
    """Geometric and acquisition jitter of the kind that differs between radiology departments."""
    from core.imaging.tfsetup import keras

    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 2),
            layers.RandomContrast(0.25, value_range=(0, 1), seed=seed + 3),
            layers.RandomBrightness(0.1, value_range=(0, 1), seed=seed + 4),
            layers.RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 1.2), value_range=(0, 1), seed=seed + 5),
            layers.GaussianNoise(0.02, seed=seed + 6),
        ],
        name="augmentation",
    )


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Inverse-frequency weights so each class pulls equally on the loss (e.g. 1:2.9 imbalance)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return {i: float(len(labels) / (n_classes * max(c, 1))) for i, c in enumerate(counts)}


PERTURBATIONS = ("clean", "blur", "sharpen", "noise", "low_resolution", "overexposed", "underexposed", "low_contrast")


def perturb(raw: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Acquisition changes a scanner or department may introduce: (N, S, S) in [0, 1] -> same."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    if kind == "clean":
        return raw
    if kind == "blur":
        return ndimage.gaussian_filter(raw, sigma=(0, 1.5, 1.5))
    if kind == "sharpen":
        return np.clip(raw + 1.0 * (raw - ndimage.gaussian_filter(raw, sigma=(0, 1.5, 1.5))), 0, 1)
    if kind == "noise":
        return np.clip(raw + rng.normal(0, 0.04, raw.shape), 0, 1).astype(np.float32)
    if kind == "low_resolution":
        small = ndimage.zoom(raw, (1, 0.4, 0.4), order=1)
        return np.clip(ndimage.zoom(small, (1, raw.shape[1] / small.shape[1], raw.shape[2] / small.shape[2]), order=1), 0, 1)
    if kind == "overexposed":
        return np.clip(raw**0.6 * 1.15, 0, 1)
    if kind == "underexposed":
        return np.clip(raw**1.6 * 0.85, 0, 1)
    if kind == "low_contrast":
        return 0.3 + 0.4 * raw
    raise ValueError(f"unknown perturbation {kind}")


@dataclass
class TrainResult:
    model: str
    device: str
    seconds: float
    epochs: int
    dataset: dict[str, Any]
    validation: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validation_callback(
    x_val, y_val, positive, progress: ProgressFn | None, cancel: CancelFn | None, epochs: int, steps: int, n_train: int
):
    """A Keras callback: validation AUC each epoch (for early stopping), progress events, cancellation."""
    from core.imaging.tfsetup import keras

    class ValidationAuc(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if cancel is not None and cancel():
                self.model.stop_training = True
                raise TrainingCancelledError("Training was cancelled; nothing was registered.")
            if progress and batch % 10 == 0:
                progress({"event": "step", "step": batch + 1, "steps": steps, "loss": float((logs or {}).get("loss", np.nan))})

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            probs = self.model.predict(x_val, batch_size=64, verbose=0)
            logs["val_auc"] = multiclass_auc(y_val, np.asarray(probs, dtype=np.float64), positive)
            if progress:
                elapsed = time.monotonic() - self.started
                progress(
                    {
                        "event": "epoch",
                        "epoch": epoch + 1,
                        "epochs": epochs,
                        "loss": float(logs.get("loss", np.nan)),
                        "val_loss": float(logs.get("val_loss", np.nan)) if "val_loss" in logs else None,
                        "val_auc": logs["val_auc"],
                        "seconds": elapsed,
                        "eta_seconds": elapsed / (epoch + 1) * (epochs - epoch - 1),
                        "images_per_second": n_train * (epoch + 1) / max(elapsed, 1e-9),
                    }
                )

    return ValidationAuc()


def train_image_model(
    data_dir: Path,
    name: str,
    config: TrainConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    command: str | None = None,
    activate: bool = True,
) -> TrainResult:
    """Train, choose the operating threshold, and register ``name``'s next version.

    Raises:
        InvalidDatasetError: the folder cannot train a classifier (one class, too few images...).
        TrainingCancelledError: ``cancel()`` returned True; nothing was registered.
    """
    import shutil

    from core.imaging import ood
    from core.imaging.tfsetup import keras, tf

    registry.check_model_name(name)
    config = config or TrainConfig()
    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    dataset = scan_labeled_folder(Path(data_dir), config.max_images_per_class, config.seed)
    size = config.image_size
    method = preprocessing.HISTEQ_V1
    x_all, raw_all, ok, skipped = load_prepared(dataset.files, size, method, progress)
    dataset = LabeledDataset(dataset.root, dataset.classes, [f for f, k in zip(dataset.files, ok) if k], dataset.labels[ok], skipped)
    x_all, raw_all = x_all[ok], raw_all[ok]
    _require_enough_images(dataset, str(data_dir))
    classes = dataset.classes
    positive_class = config.positive_class or (classes[1] if len(classes) == 2 else None)
    if positive_class is not None and positive_class not in classes:
        raise InvalidDatasetError(f"Positive class '{positive_class}' is not one of the class folders {classes}.")
    positive = classes.index(positive_class) if positive_class else None

    train_idx, val_idx = split_by_patient(dataset, config.validation_fraction, config.seed)
    x_train, y_train = x_all[train_idx], dataset.labels[train_idx]
    x_val, y_val = x_all[val_idx], dataset.labels[val_idx]

    device, strategy = choose_device()
    with strategy.scope():
        network = build_network(size, len(classes))
        if config.init_from:
            _transfer_weights(network, config.init_from)
        trainer = keras.Sequential([keras.Input((size, size, 1)), build_augmentation(config.seed), network])
        trainer.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
        )
    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps = int(np.ceil(len(x_train) / config.batch_size))
    if progress:
        progress({"event": "started", "device": device, "classes": dataset.counts(), "train_images": int(len(x_train)),
                  "validation_images": int(len(x_val)), "epochs": config.epochs, "steps": steps})
    auc_callback = _validation_callback(x_val, y_val, positive, progress, cancel, config.epochs, steps, len(x_train))
    callbacks = [
        auc_callback,
        keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=3, min_lr=1e-5),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience, restore_best_weights=True),
    ]
    history = trainer.fit(
        batches,
        epochs=config.epochs,
        class_weight=class_weights(y_train, len(classes)),
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=0,
    )
    epochs_run = len(history.history.get("loss", []))
    if cancel is not None and cancel():
        raise TrainingCancelledError("Training was cancelled; nothing was registered.")
    if progress:
        progress({"event": "evaluating", "epochs_run": epochs_run})

    keras.mixed_precision.set_global_policy("float32")
    inference = build_network(size, len(classes))
    inference.set_weights(network.get_weights())
    feature_model = keras.Model(inference.inputs, [inference.outputs[0], inference.get_layer("features").output])

    def infer(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, feats = feature_model.predict(batch, batch_size=64, verbose=0)
        return np.asarray(probs, dtype=np.float64), np.asarray(feats, dtype=np.float64)

    val_probs, val_feats = infer(x_val)
    _, train_feats = infer(x_train)
    validation: dict[str, Any] = {"n": int(len(y_val)), "auc": multiclass_auc(y_val, val_probs, positive)}
    threshold = None
    robustness: dict[str, float] = {}
    if positive is not None:
        raw_val = raw_all[val_idx]
        is_pos = y_val == positive
        perturbed_scores = []
        for i, kind in enumerate(PERTURBATIONS):
            x_kind = np.stack([preprocessing.equalize_histogram(r) for r in perturb(raw_val, kind, seed=i)])[..., None]
            scores = infer(x_kind)[0][:, positive]
            perturbed_scores.append(scores)
            robustness[kind] = auc_score(is_pos, scores)
        # One threshold for clean and perturbed films alike: maximise Youden's J averaged over them.
        threshold = robust_youden_threshold(np.stack([is_pos] * len(PERTURBATIONS)), np.stack(perturbed_scores))
        at_threshold = binary_metrics(is_pos, val_probs[:, positive], threshold)
        validation.update(
            {k: at_threshold[k] for k in ("accuracy", "sensitivity", "specificity")},
            threshold=threshold,
            robustness_auc=robustness,
        )
    else:
        validation["accuracy"] = float((val_probs.argmax(1) == y_val).mean())

    detector = ood.OodDetector.fit(train_feats)
    val_ood_rate = float(np.mean(detector.score(val_feats) > detector.threshold_))

    staging = registry.new_staging_dir()
    try:
        inference.save(staging / "model.keras")
        detector.save(staging)
        np.savez(
            staging / "validation_predictions.npz",
            labels=y_val,
            probabilities=val_probs,
            subgroups=np.asarray([_subgroup(dataset.files[i]) for i in val_idx]),
        )
        meta = {
            "name": name,
            "version": "",
            "kind": kinds.IMAGE_CLASSIFIER,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
            "architecture": f"separable-conv CNN, {inference.count_params():,} parameters",
            "model_file": "model.keras",
            "classes": classes,
            "positive_class": positive_class,
            "threshold": threshold,
            "threshold_rule": "maximise Youden's J averaged over clean and perturbed validation images",
            "input": {"size": size, "channels": 1, "preprocessing": method},
            "training": {
                "command": command,
                "data": str(data_dir),
                "config": asdict(config),
                "device": device,
                "seconds": round(time.monotonic() - started, 1),
                "epochs_run": epochs_run,
                "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
                "class_counts": dataset.counts(),
                "train_images": int(len(train_idx)),
                "validation_images": int(len(val_idx)),
                "split": "stratified by class, grouped by patient (from file names)"
                if split_groups(dataset, config.validation_fraction)[1]
                else "stratified by class, by file (the file names name no patients)",
                "skipped": skipped,
            },
            "validation": validation,
            "ood": {"method": ood.METHOD,
                    "threshold": detector.threshold_, "validation_flag_rate": val_ood_rate},
        }
        meta.update(provenance.carried_metadata(provenance.find_description(data_dir)))
        registry.write_json_atomic(staging / registry.META_FILE, meta)
        _write_card_if_available(staging)
        ref = registry.commit_version(staging, name, activate_it=activate)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TrainResult(
        model=ref.spec,
        device=device,
        seconds=round(time.monotonic() - started, 1),
        epochs=epochs_run,
        dataset={"classes": dataset.counts(), "skipped": skipped},
        validation=validation,
    )


def _subgroup(path: Path) -> str:
    """Pneumonia aetiology from Kermany-style names (bacteria/virus); 'unspecified' otherwise."""
    lowered = path.name.lower()
    for tag in ("bacteria", "virus"):
        if f"_{tag}" in lowered:
            return tag
    return "unspecified"


def _transfer_weights(network, spec: str) -> None:
    """Start from a registered model's weights where layer shapes match (the head is re-learned)."""
    from core.imaging.tfsetup import keras

    source_ref = registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER)
    source = keras.models.load_model(source_ref.path / source_ref.meta.get("model_file", "model.keras"), compile=False)
    # Layer names differ between Keras sessions; both networks come from build_network, so order matches.
    for layer, donor in zip(network.layers, source.layers):
        donor_weights = donor.get_weights()
        if [w.shape for w in donor_weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(donor_weights)


def _write_card_if_available(model_dir: Path) -> None:
    from core.models import cards

    cards.write_card(model_dir)
