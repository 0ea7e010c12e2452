"""Out-of-distribution detection: is this input like the images the model was trained on?

Mahalanobis distance of the model's pooled features from the training features' distribution
(Lee et al., NeurIPS 2018), with a Ledoit-Wolf shrunk covariance so a few hundred images suffice.

The flagging threshold is the 99th percentile of *out-of-fold* training distances: each training
image is scored by a detector fitted without it. (Scoring the training images against a detector
fitted on themselves is optimistic: they sit closer to their own mean than new films do, and on the
dev model a 99% quantile of in-sample distances flagged 28% of the validation films.)

The rates the detector gives are measured, not assumed (:func:`measure_rates`): on the model's
validation chest X-rays (should be rare) and on every non-chest image shipped inside our installed
packages (pydicom's CT/MR/ultrasound/... test files, scikit-image's sample photographs; should be
nearly all). The card writer calls it, so every card states both rates for its own model.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import KFold

from core.errors import LucidDxError

if TYPE_CHECKING:
    from core.imaging.classifier import ImageClassifier

OOD_FILE = "ood.npz"
DEFAULT_QUANTILE = 0.99
OOF_FOLDS = 5
METHOD = (
    "Mahalanobis distance of pooled CNN features (Ledoit-Wolf covariance); threshold = 99th percentile "
    "of 5-fold out-of-fold training distances"
)
_BATCH = 64
_SKIMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp"}


@dataclass
class OodDetector:
    """Fitted on (N, F) training features; ``score`` gives distances, ``is_out`` applies the threshold."""

    mean_: np.ndarray
    precision_: np.ndarray
    threshold_: float

    @classmethod
    def fit(cls, train_features: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> "OodDetector":
        """Fit mean and shrunk precision on all features; threshold from out-of-fold distances."""
        features = np.asarray(train_features, dtype=np.float64)
        estimator = LedoitWolf().fit(features)
        detector = cls(estimator.location_, estimator.precision_, 0.0)
        detector.threshold_ = float(np.quantile(_out_of_fold_distances(features), quantile))
        return detector

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) Mahalanobis distances (bigger = less like training data)."""
        centred = np.asarray(features, dtype=np.float64) - self.mean_
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, self.precision_, centred), 0.0))

    def is_out(self, score: float | None) -> bool:
        return score is not None and score > self.threshold_

    def save(self, model_dir: Path) -> None:
        np.savez(model_dir / OOD_FILE, mean=self.mean_, precision=self.precision_, threshold=self.threshold_)

    @classmethod
    def load(cls, model_dir: Path) -> "OodDetector | None":
        path = model_dir / OOD_FILE
        if not path.exists():
            return None
        with np.load(path) as data:
            return cls(data["mean"], data["precision"], float(data["threshold"]))


def _out_of_fold_distances(features: np.ndarray) -> np.ndarray:
    """(N,) distance of each row from a detector fitted on the other folds."""
    distances = np.zeros(len(features))
    folds = KFold(n_splits=min(OOF_FOLDS, len(features)), shuffle=True, random_state=0)
    for fit_idx, held_idx in folds.split(features):
        estimator = LedoitWolf().fit(features[fit_idx])
        centred = features[held_idx] - estimator.location_
        distances[held_idx] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, estimator.precision_, centred), 0.0))
    return distances


# ---------------------------------------------------------------------------------------------
# Measurement: how often does the detector flag real chest films, and how often other images?
# ---------------------------------------------------------------------------------------------


def non_chest_reference_images() -> Iterator[tuple[str, np.ndarray]]:
    """(name, (H, W) pixels in [0, 1]) for every non-chest-X-ray image shipped in our packages.

    pydicom's test files (CT, MR, ultrasound, nuclear medicine, dose maps, secondary captures: none
    is a chest radiograph; the three CR files are cervical spines) and scikit-image's bundled
    samples (photographs, microscopy, a retina, a brain phantom...). Everything goes through our
    image door; files the door refuses are not counted. Nothing is downloaded.
    """
    from core.imaging.door import load_image

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
    for label, path in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = load_image(path)
        except (LucidDxError, OSError):
            continue
        yield label, image.pixels


def validation_image_files(meta: dict[str, Any], project_root: Path | None = None) -> list[Path] | None:
    """The model's validation chest X-rays, reproduced from its training record; None if unavailable.

    Re-runs ``scan_labeled_folder`` + ``split_by_patient`` with the stored seed and fraction, which
    gives the same patient-wise split the model was validated on (if the folder is unchanged).
    """
    from core import config
    from core.imaging import training

    record = meta.get("training") or {}
    data, settings = record.get("data"), record.get("config") or {}
    if not data or "seed" not in settings:
        return None
    candidates = [Path(data)]
    if not Path(data).is_absolute():
        candidates.append((project_root or config.PROJECT_ROOT) / data)
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        return None
    try:
        dataset = _training_dataset(folder, record)
        _, val_idx = training.split_by_patient(dataset, settings.get("validation_fraction", 0.2), settings["seed"])
    except LucidDxError:
        return None
    return [dataset.files[i] for i in val_idx]


def _training_dataset(folder: Path, record: dict[str, Any]):
    """The LabeledDataset training split, as training saw it: scanned, minus the files it skipped."""
    from core.imaging import training

    settings = record.get("config") or {}
    dataset = training.scan_labeled_folder(folder, settings.get("max_images_per_class"), settings["seed"])
    skipped = {entry.get("file") for entry in record.get("skipped") or []}
    keep = np.asarray([path.name not in skipped for path in dataset.files], dtype=bool)
    return training.LabeledDataset(dataset.root, dataset.classes, [f for f, k in zip(dataset.files, keep) if k],
                                   dataset.labels[keep])


def _flag_images(model: "ImageClassifier", images: Iterator[tuple[str, np.ndarray]]) -> tuple[list[str], np.ndarray, float]:
    """Names, (N,) OOD flags and the detector's seconds per image (features to decision)."""
    names: list[str] = []
    flags: list[bool] = []
    detector_seconds = 0.0

    def pixels_noting_names() -> Iterator[np.ndarray]:
        for name, pixels in images:
            names.append(name)
            yield pixels

    for _, feats in model.predict_pixels(pixels_noting_names(), _BATCH):
        started = time.perf_counter()
        scores = model.ood_detector.score(feats)
        flags.extend(model.ood_detector.is_out(float(score)) for score in scores)
        detector_seconds += time.perf_counter() - started
    return names, np.asarray(flags, dtype=bool), detector_seconds / max(len(names), 1)


def _chest_images(files: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    from core.imaging.door import load_image

    for path in files:
        try:
            yield path.name, load_image(path).pixels
        except LucidDxError:
            continue


def measure_rates(model: "ImageClassifier", validation_files: list[Path] | None) -> dict[str, Any]:
    """Flag rates of the model's OOD detector on its validation films and on non-chest images.

    Returns a dict with ``validation_flag_rate`` / ``validation_n`` (None when the validation films
    are not available), ``non_chest_flag_rate`` / ``non_chest_n``, the non-chest images that were
    *not* flagged (by name), the detector threshold and the detector's milliseconds per image.
    Raises ValueError if the model has no OOD detector.
    """
    if model.ood_detector is None:
        raise ValueError(f"{model.spec} has no {OOD_FILE}; it cannot flag unfamiliar inputs.")
    result: dict[str, Any] = {"method": METHOD, "threshold": float(model.ood_detector.threshold_)}
    if validation_files:
        names, flags, _ = _flag_images(model, _chest_images(validation_files))
        result.update(validation_flag_rate=float(flags.mean()), validation_n=int(len(flags)),
                      validation_source="the model's own validation split, reproduced from its training record")
    else:
        result.update(validation_flag_rate=None, validation_n=0, validation_source=None)
    names, flags, seconds = _flag_images(model, non_chest_reference_images())
    result.update(
        non_chest_flag_rate=float(flags.mean()) if len(flags) else None,
        non_chest_n=int(len(flags)),
        non_chest_sources="pydicom test files (CT, MR, US, NM, RT dose, secondary capture, CR spine) and scikit-image sample images",
        non_chest_missed=[n for n, f in zip(names, flags) if not f],
        detector_ms_per_image=round(seconds * 1000.0, 4),
    )
    return result


def refit(model_dir: Path) -> dict[str, Any]:
    """Refit a registered image model's detector from its training record and update its meta.json.

    For models trained before the out-of-fold threshold: reproduces the train/validation split,
    fits on the training films' features and records the validation flag rate. Returns meta["ood"].
    Raises LucidDxError if the training data is not available.
    """
    from core.models import registry
    from core.imaging import training
    from core.imaging.classifier import ImageClassifier

    model_dir = Path(model_dir)
    meta = json.loads((model_dir / registry.META_FILE).read_text())
    record, settings = meta.get("training") or {}, (meta.get("training") or {}).get("config") or {}
    val_files = validation_image_files(meta)
    if val_files is None:
        raise LucidDxError(f"{model_dir}: its training data ({record.get('data')}) is not available to refit the detector.")
    folder = Path(record["data"]) if Path(record["data"]).is_dir() else Path(__file__).resolve().parents[1] / record["data"]
    dataset = _training_dataset(folder, record)
    train_idx, _ = training.split_by_patient(dataset, settings.get("validation_fraction", 0.2), settings["seed"])
    model = ImageClassifier(registry.ModelRef(meta.get("name", ""), meta.get("version", ""), model_dir, False, meta))

    def features_of(files: list[Path]) -> np.ndarray:
        pixels = (image for _, image in _chest_images(files))
        return np.concatenate([feats for _, feats in model.predict_pixels(pixels, _BATCH)])

    detector = OodDetector.fit(features_of([dataset.files[i] for i in train_idx]))
    val_rate = float(np.mean(detector.score(features_of(val_files)) > detector.threshold_))
    detector.save(model_dir)
    meta["ood"] = {"method": METHOD, "threshold": detector.threshold_, "validation_flag_rate": val_rate}
    registry.write_json_atomic(model_dir / registry.META_FILE, meta)
    return meta["ood"]


if __name__ == "__main__":  # python -m core.imaging.ood refit MODEL_DIR  (then rebuild its card)
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "refit":
        sys.exit("usage: python -m core.imaging.ood refit MODEL_DIR")
    print(json.dumps(refit(Path(sys.argv[2])), indent=2))
