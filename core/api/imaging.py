"""Image routes: ``POST /v1/predict``, ``/v1/explain``, ``/v1/report``. Each reads the upload (within the
door's size limit), names it in the audit log by its SHA-256, and calls ``core.services``."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response
from PIL import Image

from core.api.auth import Caller, caller_for
from core.api.uploads import display_name, read_upload
from core.errors import UnsupportedImageError
from core.services import catalog, imaging, reports
from core.services.results import prediction_json

router = APIRouter(tags=["images"])
MODEL = Query(
    None,
    description="NAME or NAME:VERSION of an image model (default: the default image model). "
    "A clinician's key may use approved (active) versions only: another version is a 403.",
)
UPLOAD = File(..., description="A PNG, JPEG, BMP, TIFF or DICOM file.")
METHOD = Query("gradcam", description="Explanation method.", json_schema_extra={"enum": list(imaging.METHODS)})


def _diagnosed(
    file: UploadFile, model: str | None, caller: Caller, frame: int | None = None, explain: bool = True
) -> tuple[imaging.FileResult, Any, str]:
    """(the diagnosed upload, its model, its name); a file the door refuses is a 422 with the door's reason."""
    data = read_upload(file)
    caller.hash_input(data)
    classifier = imaging.load_model(model, caller.account)  # a clinician's key: approved versions only
    caller.model = classifier.ref.spec
    name = display_name(file)
    result = imaging.diagnose(data, name, classifier, frame=frame, explain=explain)
    if not result.ok:
        raise UnsupportedImageError(result.error)
    return result, classifier, name


@router.post("/predict", summary="Predict one image (the CLI's predict object)")
def predict(
    file: UploadFile = UPLOAD,
    model: str | None = MODEL,
    frame: int | None = Query(None, ge=0, le=100_000, description="0-based frame of a multi-frame DICOM."),
    caller: Caller = Depends(caller_for("predict")),
) -> dict[str, Any]:
    """The ``python -m core predict --json`` object of the uploaded file (``file`` is the upload's name)."""
    result, classifier, name = _diagnosed(file, model, caller, frame, explain=False)
    return prediction_json(name, result) | {"approved": catalog.is_approved(classifier.ref)}


def _display_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the film as the dashboard shows it: the longer side at most DISPLAY_MAX_SIDE, aspect kept."""
    scale = min(1.0, imaging.DISPLAY_MAX_SIDE / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _small_map(heatmap: np.ndarray, size: int) -> list[list[float]]:
    """(S, S) float in [0, 1] -> ``size`` x ``size`` nested lists (box-averaged, 4 decimals)."""
    small = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F").resize((size, size), Image.Resampling.BOX)
    return np.round(np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0), 4).tolist()


@router.post(
    "/explain",
    summary="Explain one image: the heatmap as PNG or as a small JSON grid",
    responses={200: {"content": {"image/png": {}, "application/json": {}}}},
)
def explain(
    file: UploadFile = UPLOAD,
    model: str | None = MODEL,
    method: str = METHOD,
    target: str | None = Query(None, description="Class to explain (default: the predicted one)."),
    format: Literal["png", "json"] = Query("png", description="png: the colour-mapped heatmap; json: the grid."),
    size: int = Query(32, ge=4, le=192, description="Grid size of format=json."),
    caller: Caller = Depends(caller_for("explain")),
) -> Any:
    result, classifier, _name = _diagnosed(file, model, caller)
    explanation = imaging.explain(result, classifier, method, target)
    if format == "png":
        return Response(
            imaging.heatmap_png(explanation, _display_shape(result.image.pixels.shape[:2])), media_type="image/png"
        )
    return {
        "model": classifier.ref.spec,
        "method": explanation.method,
        "target": explanation.class_name,
        "label": result.prediction.label,
        "size": size,
        "heatmap": _small_map(explanation.heatmap, size),
    }


@router.post(
    "/report",
    summary="A PDF case report of one film",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def report(
    file: UploadFile = UPLOAD,
    model: str | None = MODEL,
    method: str = METHOD,
    lang: Literal["en", "zh"] = Query("en", description="Language of the report."),
    target: str | None = Query(None, description="Class the overlay explains (default: the model's call)."),
    caller: Caller = Depends(caller_for("report")),
) -> Response:
    """The film, its overlay, the result against the threshold and the model card's key numbers."""
    data = read_upload(file)
    caller.hash_input(data)
    caller.model = imaging.load_model(model, caller.account).ref.spec
    done = reports.case_report([(data, display_name(file))], caller.model, method, lang, target)
    if done.failed:
        raise UnsupportedImageError(" ".join(item["error"] for item in done.failed))
    return Response(
        done.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="case-report.pdf"'},
    )
