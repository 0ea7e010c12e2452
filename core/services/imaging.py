"""The imaging verbs every front end shares: diagnose a file (predict + explain, result or error).

``diagnose`` runs ONE forward pass per file that gives both the prediction and its Grad-CAM; the
page and the CLI's ``predict`` call it, and the page draws what it returns (figures come from
``core.charts.diagnosis``). Nothing here knows about Streamlit.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import config
from core.access.roles import HasRole
from core.errors import LucidDxError
from core.i18n import _
from core.imaging import outputs
from core.imaging.door import MAX_FILE_BYTES, LoadedImage, load_image
from core.imaging.methods import METHODS
from core.imaging.model_meta import ServedClassifier
from core.imaging.outputs import Explanation, Prediction
from core.imaging.reading import Reading, filter_choices, filter_name, filter_rows, reading, reading_text, results_table
from core.imaging.windowing import preset_window
from core.models import kinds, registry
from core.services import approval, inference_queue
from core.services.film_viewer import (
    DISPLAY_MAX_SIDE,
    FilmView,
    display_image,
    film_levels,
    film_view,
    header_rows,
    window_presets,
)

if TYPE_CHECKING:  # TensorFlow loads with the first model, not with this module: the page paints first
    from core.imaging.classifier import ImageClassifier

    Classifier = ImageClassifier | ServedClassifier
    """A model this process runs, or one a Ray Serve replica runs for it (LUCIDDX_SERVE on: no TensorFlow here)."""

__all__ = [
    "DISPLAY_MAX_SIDE",
    "METHODS",
    "MAX_UPLOAD_MB",
    "Explanation",
    "FileResult",
    "Reading",
    "diagnose",
    "explain",
    "load_model",
    "overlay",
    "heatmap_png",
    "reading",
    "reading_text",
    "results_table",
    "model_choices",
    "model_labels",
    "usable_model",
    "sample_images",
    "display_image",
    "header_rows",
    "digest",
    "threshold_in_force",
    "FilmView",
    "film_levels",
    "film_view",
    "filter_choices",
    "filter_name",
    "filter_rows",
    "preset_window",
    "threshold_source_text",
    "window_presets",
]
MAX_UPLOAD_MB = MAX_FILE_BYTES // 1024**2

SAMPLES_DIR = config.ASSETS_DIR / "samples"
_SAMPLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}


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
    explanation: Explanation | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def digest(data: bytes) -> str:
    """A short content hash: the cache key of an upload (same bytes, same result)."""
    return hashlib.sha256(data).hexdigest()[:16]


def load_model(spec: str | None = None, actor: HasRole | None = None) -> Classifier:
    """The image model ``NAME`` / ``NAME:VERSION`` (None = the default) as ``actor`` may use it, loaded once
    per process. ``actor`` None is sign-in switched off (development); a clinician gets approved versions
    only (ModelNotApprovedError otherwise, see ``core.services.approval``).

    With LUCIDDX_SERVE on, the network runs in a Ray Serve replica: this process gets the version's
    ``ServedClassifier`` (meta.json only) and never imports TensorFlow.
    """
    resolved = approval.resolve_model(actor, spec, kinds.IMAGE_CLASSIFIER).spec
    if _served():
        return _served_view(resolved)
    return _local(resolved)


@functools.lru_cache(maxsize=8)
def _served_view(spec: str) -> ServedClassifier:
    return ServedClassifier(registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER))


def _local(spec: str) -> ImageClassifier:
    from core.imaging.classifier import load_classifier

    return load_classifier(spec)


def _runnable(classifier: Classifier) -> ImageClassifier:
    """The network itself, for work done in this process (a served view loads it here: LUCIDDX_SERVE was
    switched off since it was handed out)."""
    return _local(classifier.spec) if isinstance(classifier, ServedClassifier) else classifier


def threshold_in_force(spec: str | None = None) -> tuple[float | None, str]:
    """(threshold, "stored" | "site:<validation id>") that predictions of ``spec`` use now."""
    from core.models import site_validation  # scikit-learn comes with it: not before the page's first paint

    return site_validation.threshold_in_force(registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER))


def _in_force(classifier: Classifier) -> tuple[float | None, str]:
    """(threshold, source) in force for ``classifier``: read ONCE per film, before it is predicted, so that
    its label, the class its map explains and every view of it (row, PDF, SC, SR) come from one decision."""
    from core.models import site_validation

    return site_validation.threshold_in_force(classifier.ref)


def _served_load(spec: str) -> ImageClassifier:
    return _local(spec)


def _served_predict(classifier: ImageClassifier, films: np.ndarray, threshold: float | None, source: str) -> list:
    return classifier.predict_prepared(films, threshold, source)


def _served_explain(classifier: ImageClassifier, film: np.ndarray, threshold: float | None, source: str) -> tuple:
    from core.imaging import saliency

    return saliency.predict_and_explain(classifier, film, None, threshold, source)


def _explain_method(classifier: ImageClassifier, film: np.ndarray, method: str, target: str | None) -> Explanation:
    from core.imaging import saliency

    return saliency.explain(classifier, film, method, target)


# What a Serve replica runs: this module's own functions, so served and in-process films go through one code path.
SERVED_WORK = (_served_load, _served_predict, _served_explain, _explain_method)


def serve_model(spec: str, replicas: int | None = None) -> None:
    """Serve ``NAME:VERSION`` on the engine's Ray Serve (``replicas``: resize the image models' deployment)."""
    from core.engine import serving

    serving.deploy(spec, SERVED_WORK, replicas)


def warm_served(spec: str) -> bool:
    """When films are served, load ``NAME:VERSION`` in a replica now (an activation: the first film after it
    does not wait for the load). Nothing restarts: versions are multiplexed. Returns whether it did anything."""
    if not _served():
        return False
    from core.engine import serving

    serving.warm(spec, SERVED_WORK)
    return True


def _served() -> bool:
    """Whether films go to the Ray Serve deployment (LUCIDDX_SERVE, see core.engine.serving)."""
    from core.engine import serving

    return serving.enabled()


def _read_source(source: bytes | str | Path, name: str | None) -> tuple[bytes | Path, str]:
    """(what the door reads, the name to show); a path that is not a file is the user's error."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "upload"
    path = Path(source)
    if path.is_dir():
        raise LucidDxError(
            _("{file}: is a folder; name the image files in it (e.g. {path}/*.dcm).").format(
                file=name or source, path=path
            )
        )
    if not path.is_file():
        raise LucidDxError(_("{file}: file not found; check the path.").format(file=name or source))
    return path, name or str(source)


def diagnose(
    source: bytes | str | Path,
    name: str | None,
    classifier: Classifier,
    frame: int | None = None,
    explain: bool = True,
    on_wait: Callable[[int], None] | None = None,
) -> FileResult:
    """Decode, prepare, predict and (``explain``) Grad-CAM one file, in ONE forward pass.

    The work waits its turn in the process's fair inference queue (``inference_queue``): with many
    sessions at once, films are scored in arrival order at close to full speed instead of all together
    and all late; ``on_wait(films_ahead)`` lets a front end say how many are ahead.

    Args:
        source: the upload's bytes, or a file path.
        name: shown in messages (defaults to the path, or "upload").
        frame: 0-based frame of a multi-frame DICOM / page of a TIFF; None = the default one.
        explain: also compute the Grad-CAM of the predicted class from the same pass.

    Returns:
        A FileResult; a file users broke comes back with ``error`` set (naming the file), never raised.
        Its label is decided at the threshold in force (``threshold_source`` says which).
    """
    key = digest(source) if isinstance(source, (bytes, bytearray)) else digest(str(source).encode())
    result = FileResult(name=name or str(source), digest=key, frame=frame)
    try:
        with inference_queue.QUEUE.slot(on_wait):
            readable, result.name = _read_source(source, name)
            result.image = load_image(readable, name=result.name, frame=frame)
            result.prepared = classifier.prepare(result.image.pixels)
            threshold, source = _in_force(classifier)
            if _served():  # the same functions, run by the Serve replica of this version (core.engine.serving)
                from core.engine import serving

                result.prediction, result.explanation = serving.score(
                    classifier.ref.spec, result.prepared, explain, threshold, source, SERVED_WORK
                )
            elif explain:
                result.prediction, result.explanation = _served_explain(
                    _runnable(classifier), result.prepared, threshold, source
                )
            else:
                result.prediction = _served_predict(
                    _runnable(classifier), result.prepared[np.newaxis], threshold, source
                )[0]
    except LucidDxError as exc:
        result.error = str(exc)
    return result


def explain(
    result: FileResult, classifier: Classifier, method: str = "gradcam", target: str | None = None
) -> Explanation:
    """The heatmap of ``method`` for class ``target`` (None = predicted) of a diagnosed file.

    The Grad-CAM of the predicted class is the one ``diagnose`` already computed: no second pass.

    Raises:
        InvalidExplanationError: unknown method or class.
        LucidDxError: the file was not diagnosed (it has an error).
    """
    if result.prepared is None or result.prediction is None:
        raise LucidDxError(
            _("{name}: there is no prediction to explain ({reason}).").format(
                name=result.name, reason=result.error or _("not diagnosed")
            )
        )
    chosen = target or result.prediction.decision
    done = result.explanation
    if done is not None and method == done.method and chosen == done.class_name:
        return done
    if _served():
        from core.engine import serving

        return serving.explain(classifier.spec, result.prepared, method, chosen, SERVED_WORK)
    return _explain_method(_runnable(classifier), result.prepared, method, chosen)


def overlay(pixels: np.ndarray, explanation: Explanation, opacity: float) -> np.ndarray:
    """(H, W) greyscale in [0, 1] with the heatmap blended over it -> (H, W, 3) uint8."""
    return outputs.overlay(pixels, explanation.heatmap, opacity)


def heatmap_png(explanation: Explanation, shape: tuple[int, int] | None = None) -> bytes:
    """The colour-mapped heatmap as PNG bytes at ``shape`` (H, W)."""
    return outputs.heatmap_png(explanation.heatmap, shape)


def usable_model(actor: HasRole | None, spec: str | None) -> tuple[str, bool]:
    """(``NAME:VERSION``, approved) of the image model ``spec`` as ``actor`` may use it (see ``load_model``)."""
    ref = approval.resolve_model(actor, spec, kinds.IMAGE_CLASSIFIER)
    return ref.spec, registry.is_approved(ref)


def model_labels(specs: list[str]) -> dict[str, str]:
    """How a picker names each ``NAME:VERSION``: "(active)" or "(not approved)"."""
    return {spec: approval.version_label(registry.resolve(spec)) for spec in specs}


def model_choices(actor: HasRole | None = None) -> tuple[list[str], int]:
    """The image model versions ``actor`` may use as ``NAME:VERSION`` (a clinician: approved ones only), and
    the index of the default model's active version."""
    refs = approval.usable_versions(actor, kinds.IMAGE_CLASSIFIER)
    specs = [ref.spec for ref in refs]
    default_name = config.default_model(kinds.IMAGE_CLASSIFIER)
    approved = [ref.spec for ref in refs if registry.is_approved(ref)]
    preferred = next((s for s in approved if s.partition(":")[0] == default_name), approved[0] if approved else None)
    return specs, specs.index(preferred) if preferred else 0


def sample_images() -> list[Path]:
    """The bundled sample images (assets/samples), so a demo needs no files of one's own."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.is_file() and p.suffix.lower() in _SAMPLE_SUFFIXES)


def threshold_source_text(source: str | None) -> str | None:
    """Where a threshold came from, in the reader's language ("stored", or the site validation's id)."""
    if not source:
        return source
    if source == "stored":
        return _("stored with the model")
    if source.startswith("site:"):
        return _("site validation {id}").format(id=source.split(":", 1)[1])
    return source
