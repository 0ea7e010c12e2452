"""Measure how often a model's OOD detector flags real chest films and how often other images.

Needs the classifier (features come from its network), so it lives apart from the detector.
``store_measurement`` writes the rates into the model's meta.json "ood" section atomically; the
card builder reads only that section.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core import config
from core.errors import InvalidModelError, LucidDxError
from core.i18n import _
from core.imaging import datasets
from core.imaging.classifier import ImageClassifier
from core.imaging.door import load_image
from core.imaging.ood import METHOD, OOD_FILE, OodDetector
from core.models import registry

_BATCH = 64
_SKIMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp"}
NON_CHEST_SOURCES = (
    "pydicom test files (CT, MR, US, NM, RT dose, secondary capture, CR spine) and scikit-image sample images"
)


def _reference_candidates() -> list[tuple[str, Path]]:
    import pydicom.data
    import skimage.data

    candidates: list[tuple[str, Path]] = []
    pydicom_root = Path(pydicom.data.__file__).parent
    for name in sorted(pydicom.data.get_testdata_files()):
        path = Path(name)
        if path.suffix.lower() in (".dcm", "") and path.is_file():
            candidates.append((f"pydicom:{path.relative_to(pydicom_root).as_posix()}", path))
    skimage_root = Path(skimage.data.__file__).parent
    for path in sorted(skimage_root.iterdir()):
        if path.suffix.lower() in _SKIMAGE_SUFFIXES:
            candidates.append((f"skimage:{path.name}", path))
    return candidates


def non_chest_reference_images() -> Iterator[tuple[str, np.ndarray]]:
    """(name, (H, W) pixels in [0, 1]) for every non-chest-X-ray image shipped in our packages.

    pydicom's test files (none is a chest radiograph; the CR files are cervical spines) and
    scikit-image's bundled samples. Everything goes through our image door; files the door refuses
    are not counted (by design: they never reach the model). Nothing is downloaded.
    """
    for label, path in _reference_candidates():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = load_image(path)
        except LucidDxError:
            continue  # refused at the door: a user could not send it to the model either
        yield label, image.pixels


def _training_folder(meta: dict[str, Any], project_root: Path | None = None) -> Path | None:
    data = (meta.get("training") or {}).get("data")
    if not data:
        return None
    candidates = [Path(data)]
    if not Path(data).is_absolute():
        candidates.append((project_root or config.PROJECT_ROOT) / data)
    return next((c for c in candidates if c.is_dir()), None)


def training_dataset(folder: Path, record: dict[str, Any]) -> datasets.LabeledDataset:
    """The labeled dataset as training saw it: listed by the one lister, minus the files it skipped."""
    settings = record.get("config") or {}
    dataset = datasets.scan_labeled_folder(folder, settings.get("max_images_per_class"), settings["seed"])
    skipped = {entry.get("file") for entry in record.get("skipped") or []}
    return dataset.keep(np.asarray([path.name not in skipped for path in dataset.files], dtype=bool))


def reproduced_split(meta: dict[str, Any], project_root: Path | None = None):
    """(dataset, train indices, validation indices) from the training record; None if unavailable."""
    record = meta.get("training") or {}
    settings = record.get("config") or {}
    folder = _training_folder(meta, project_root)
    if folder is None or "seed" not in settings:
        return None
    try:
        dataset = training_dataset(folder, record)
        train_idx, val_idx = datasets.split_by_patient(
            dataset, settings.get("validation_fraction", 0.2), settings["seed"]
        )
    except LucidDxError:
        return None  # the folder changed so much it no longer splits: the validation films are unavailable
    return dataset, train_idx, val_idx


def validation_image_files(meta: dict[str, Any], project_root: Path | None = None) -> list[Path] | None:
    """The model's validation chest X-rays, reproduced from its training record; None if unavailable."""
    split = reproduced_split(meta, project_root)
    if split is None:
        return None
    dataset, _train_idx, val_idx = split
    return [dataset.files[i] for i in val_idx]


def _chest_images(files: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    for path in files:
        try:
            yield path.name, load_image(path).pixels
        except LucidDxError:
            continue  # training skipped it too


def _flag_images(
    model: ImageClassifier, images: Iterator[tuple[str, np.ndarray]]
) -> tuple[list[str], np.ndarray, float]:
    """Names, (N,) OOD flags and the detector's seconds per image (features to decision)."""
    names: list[str] = []
    flags: list[bool] = []
    detector_seconds = 0.0

    def pixels_noting_names() -> Iterator[np.ndarray]:
        for name, pixels in images:
            names.append(name)
            yield pixels

    for _probs, feats in model.predict_pixels(pixels_noting_names(), _BATCH):
        started = time.perf_counter()
        scores = model.ood_detector.score(feats)
        flags.extend(model.ood_detector.is_out(float(score)) for score in scores)
        detector_seconds += time.perf_counter() - started
    return names, np.asarray(flags, dtype=bool), detector_seconds / max(len(names), 1)


def _require_detector(model: ImageClassifier) -> OodDetector:
    if model.ood_detector is None:
        raise InvalidModelError(
            _(
                "Model '{spec}' has no {file}, so it cannot flag unfamiliar inputs; refit it with `python -m "
                "core.imaging.ood refit MODEL_DIR`, or retrain this model."
            ).format(spec=model.spec, file=OOD_FILE)
        )
    return model.ood_detector


def measure_rates(model: ImageClassifier, validation_files: list[Path] | None) -> dict[str, Any]:
    """Flag rates of the model's OOD detector on its validation films and on non-chest images.

    Returns ``validation_flag_rate`` / ``validation_n`` (None / 0 when the validation films are not
    available), ``non_chest_flag_rate`` / ``non_chest_n``, the non-chest images *not* flagged, the
    detector threshold and its milliseconds per image.

    Raises:
        InvalidModelError: the model has no OOD detector.
    """
    detector = _require_detector(model)
    result: dict[str, Any] = {"method": METHOD, "threshold": float(detector.threshold_)}
    if validation_files:
        _scores, flags, _names = _flag_images(model, _chest_images(validation_files))
        result.update(
            validation_flag_rate=float(flags.mean()),
            validation_n=int(len(flags)),
            validation_source="the model's own validation split, reproduced from its training record",
        )
    else:
        result.update(validation_flag_rate=None, validation_n=0, validation_source=None)
    names, flags, seconds = _flag_images(model, non_chest_reference_images())
    result.update(
        non_chest_flag_rate=float(flags.mean()) if len(flags) else None,
        non_chest_n=int(len(flags)),
        non_chest_sources=NON_CHEST_SOURCES,
        non_chest_missed=[n for n, f in zip(names, flags) if not f],
        detector_ms_per_image=round(seconds * 1000.0, 4),
    )
    return result


def store_measurement(model_dir: Path, measured: dict[str, Any]) -> dict[str, Any]:
    """Write ``measured`` as meta.json's "ood" section (atomically) and return that section."""
    meta_path = Path(model_dir) / registry.META_FILE
    meta = json.loads(meta_path.read_text())
    meta["ood"] = {**measured, "measured": True}
    registry.write_json_atomic(meta_path, meta)
    return meta["ood"]


def measure(model: str | Path) -> dict[str, Any]:
    """Measure the rates of image model ``model`` (``NAME[:VERSION]`` or its folder) and store them in its meta.json."""
    from core.models import kinds

    folder = Path(model)
    if folder.is_dir() and (folder / registry.META_FILE).is_file():
        meta = json.loads((folder / registry.META_FILE).read_text())
        ref = registry.ModelRef(
            meta.get("name", folder.parent.name), meta.get("version", folder.name), folder, False, meta
        )
    else:
        ref = registry.resolve(str(model), kind=kinds.IMAGE_CLASSIFIER)
    classifier = ImageClassifier(ref)
    return store_measurement(ref.path, measure_rates(classifier, validation_image_files(ref.meta)))


def refit(model_dir: Path) -> dict[str, Any]:
    """Refit a registered image model's detector from its training record, then measure and store its rates.

    Reproduces the train/validation split, fits on the training films' features, saves the detector
    and writes the freshly measured rates (``measure_rates``) as meta.json's "ood" section.

    Raises:
        InvalidDatasetError: the training data is not available.
    """
    from core.errors import InvalidDatasetError

    model_dir = Path(model_dir)
    meta = json.loads((model_dir / registry.META_FILE).read_text())
    split = reproduced_split(meta)
    if split is None:
        raise InvalidDatasetError(
            _(
                "{model_dir}: its training data ({data}) is not available to refit the detector; put the training "
                "folder back where it was, or retrain the model."
            ).format(model_dir=model_dir, data=(meta.get("training") or {}).get("data"))
        )
    dataset, train_idx, val_idx = split
    ref = registry.ModelRef(meta.get("name", ""), meta.get("version", ""), model_dir, False, meta)
    model = ImageClassifier(ref)
    pixels = (image for _name, image in _chest_images([dataset.files[i] for i in train_idx]))
    features = np.concatenate([feats for _probs, feats in model.predict_pixels(pixels, _BATCH)])
    OodDetector.fit(features).save(model_dir)
    model.ood_detector = OodDetector.load(model_dir)
    return store_measurement(model_dir, measure_rates(model, [dataset.files[i] for i in val_idx]))
