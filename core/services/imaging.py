"""Data shaping for the Image Diagnosis page: one upload -> a result row, figures, display images.

The page only draws what these functions return; nothing here knows about Streamlit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from core import config
from core.models import kinds, registry
from core.imaging.classifier import ImageClassifier, Prediction
from core.errors import LucidDxError
from core.imaging.door import LoadedImage, load_image

SAMPLES_DIR = config.ASSETS_DIR / "samples"
_SAMPLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
DISPLAY_MAX_SIDE = 768


@dataclass
class FileResult:
    """What became of one uploaded file: its image and prediction, or the reason it failed.

    ``prepared`` is the model input (S, S, 1) float32 in [0, 1]; ``image.pixels`` the decoded
    (H, W) greyscale in [0, 1].
    """

    name: str
    digest: str
    frame: int | None = None
    image: LoadedImage | None = field(default=None, repr=False)
    prepared: np.ndarray | None = field(default=None, repr=False)
    prediction: Prediction | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def digest(data: bytes) -> str:
    """A short content hash: the cache key of an upload (same bytes, same result)."""
    return hashlib.sha256(data).hexdigest()[:16]


def diagnose(data: bytes, name: str, classifier: ImageClassifier, frame: int | None = None) -> FileResult:
    """Decode, prepare and predict one upload. A file users broke comes back with ``error`` set.

    Never raises for bad input: the message (naming the file) is in ``FileResult.error``.
    """
    result = FileResult(name=name, digest=digest(data), frame=frame)
    try:
        result.image = load_image(data, name=name, frame=frame)
        result.prepared = classifier.prepare(result.image.pixels)
        result.prediction = classifier.predict_prepared(result.prepared[np.newaxis])[0]
    except LucidDxError as exc:
        result.error = str(exc)
    return result


def results_table(results: list[FileResult]) -> list[dict[str, object]]:
    """One row per file for the results table: file, label, probability of that label, OOD, error."""
    rows = []
    for item in results:
        prediction = item.prediction
        rows.append(
            {
                "file": item.name,
                "label": prediction.label if prediction else None,
                "probability": prediction.probabilities[prediction.label] if prediction else None,
                "out of distribution": prediction.out_of_distribution if prediction else None,
                "error": item.error or "",
            }
        )
    return rows


def probability_figure(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the class probabilities, with the operating threshold drawn as a line."""
    classes = list(prediction.probabilities)
    values = [prediction.probabilities[c] for c in classes]
    # Red only for a positive finding: a confident NORMAL drawn in alarm red misleads at a glance.
    if prediction.positive_class is None:
        called = "#1f6feb"
    else:
        called = "#d62728" if prediction.label == prediction.positive_class else "#2f9e44"
    colours = [called if c == prediction.label else "#9aa5b1" for c in classes]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=classes,
            orientation="h",
            marker_color=colours,
            text=[f"{v:.1%}" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    if prediction.threshold is not None and prediction.positive_class in classes:
        figure.add_vline(
            x=prediction.threshold,
            line_dash="dash",
            line_color="black",
            annotation_text=f"threshold {prediction.threshold:g} for {prediction.positive_class}",
            annotation_position="top",
        )
    figure.update_layout(
        xaxis={"range": [0, 1], "title": "probability", "tickformat": ".0%"},
        height=110 + 40 * len(classes),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        showlegend=False,
    )
    return figure


def model_choices() -> tuple[list[str], int]:
    """Every version of every image model as ``NAME:VERSION``, and the index of the default's active one."""
    models = registry.list_models(kind=kinds.IMAGE_CLASSIFIER)
    specs = [ref.spec for versions in models.values() for ref in versions]
    default_name = config.default_model(kinds.IMAGE_CLASSIFIER)
    preferred = default_name if default_name in models else next(iter(models), None)
    if preferred is None:
        return specs, 0
    active = registry.active_version(preferred).spec
    return specs, specs.index(active)


def sample_images() -> list[Path]:
    """The bundled sample images (assets/samples), so a demo needs no files of one's own."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.is_file() and p.suffix.lower() in _SAMPLE_SUFFIXES)


def display_image(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """Shrink (H, W) float [0, 1] or (H, W, 3) uint8 for the screen; returns uint8, aspect kept."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    height, width = array.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


def header_rows(image: LoadedImage) -> list[dict[str, str]]:
    """The safe header summary (no patient fields: core.images whitelists them) plus size, as rows."""
    rows = [{"field": "Size (pixels)", "value": f"{image.shape[1]} × {image.shape[0]}"}]
    rows += [{"field": key, "value": value} for key, value in image.metadata.items()]
    if image.n_frames > 1:
        shown = "" if image.frame_index is None else f" (showing frame {image.frame_index + 1})"
        rows.append({"field": "Frames", "value": f"{image.n_frames}{shown}"})
    return rows
