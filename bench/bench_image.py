"""Latency of the image path users take (the service's ``diagnose``, as the page and CLI call it)
against bare predict, in the same run; plus each saliency method.

Prints a markdown table of median milliseconds (after warm-up) for a 224 px and a 2048 px PNG made
from a bundled sample X-ray, and the ratios of the users' path to bare predict.

    python bench/bench_image.py [--runs 30] [--model chest_xray]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.imaging import outputs, saliency  # noqa: E402
from core.imaging.door import load_image  # noqa: E402
from core.imaging.tfsetup import tf  # noqa: E402
from core.services import imaging as diagnosis  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"
SIZES = (224, 2048)
WARMUP = 3


def median_ms(step: Callable[[], object], runs: int) -> float:
    """Median wall time of ``step`` in milliseconds over ``runs`` calls, after warm-up calls."""
    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def png_of_size(size: int) -> bytes:
    """The sample X-ray resized to (size, size) and encoded as an 8-bit greyscale PNG."""
    with Image.open(SAMPLE) as img:
        resized = img.convert("L").resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG")
    return buffer.getvalue()


PAGE = "users' path: diagnose(bytes) = decode + predict + Grad-CAM"
BARE = "bare path: decode + preprocess + predict"


def measure(model: str | None, runs: int) -> tuple[str, list[tuple[str, list[float]]]]:
    classifier = diagnosis.load_model(model)
    saliency.get_explainer(classifier)  # built once per loaded model, as the app does
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    for size in SIZES:
        data = png_of_size(size)
        pixels = load_image(data, name=f"{size}.png").pixels
        prepared = classifier.prepare(pixels)
        batch = prepared[np.newaxis]
        label = classifier.predict_prepared(batch)[0].label
        few = max(5, runs // 3)
        add("decode + preprocess", median_ms(lambda: classifier.prepare(load_image(data, name="x.png").pixels), runs))
        add("bare predict (prepared input, incl. OOD score)", median_ms(lambda: classifier.predict_prepared(batch), runs))
        add("predict + Grad-CAM, one pass (prepared input)", median_ms(lambda: saliency.predict_and_explain(classifier, prepared), runs))
        add(BARE, median_ms(lambda: classifier.predict_prepared(classifier.prepare(load_image(data, name="x.png").pixels)[np.newaxis]), runs))
        add(PAGE, median_ms(lambda: diagnosis.diagnose(data, "x.png", classifier), runs))
        for method in ("gradcam++", "scorecam", "smoothgrad"):
            add(
                f"predict + {saliency.METHODS[method]}",
                median_ms(
                    lambda m=method: (classifier.predict_prepared(batch), saliency.explain(classifier, prepared, m, label)),
                    few if method == "smoothgrad" else runs,
                ),
            )
        heat = saliency.predict_and_explain(classifier, prepared)[1].heatmap
        add("overlay at image size", median_ms(lambda: outputs.overlay(pixels, heat), few))
        add("heatmap PNG at image size", median_ms(lambda: outputs.heatmap_png(heat, pixels.shape), few))
    pairs = [
        ("ratio: users' path / bare path", PAGE, BARE),
        ("ratio: predict + Grad-CAM / bare predict", "predict + Grad-CAM, one pass (prepared input)",
         "bare predict (prepared input, incl. OOD score)"),
    ]
    table = [(name, values) for name, values in rows.items()]
    for title, top, bottom in pairs:
        table.append((title, [rows[top][i] / rows[bottom][i] for i in range(len(SIZES))]))
    return f"{classifier.spec} ({classifier.input_size} px input)", table


def render(model_line: str, table: list[tuple[str, list[float]]], runs: int) -> str:
    header = ["| step (median of %d runs) | 224 px | 2048 px |" % runs, "|---|---:|---:|"]
    lines = []
    for name, values in table:
        if name.startswith("ratio"):
            cells = [f"{v:.2f}x" for v in values]
        else:
            cells = [f"{v:.1f} ms" for v in values]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    info = (
        f"Model {model_line}; TensorFlow {tf.__version__}; {os.cpu_count()} CPU cores; "
        f"{platform.processor() or platform.machine()}; Python {platform.python_version()}."
    )
    return "\n".join([info, "", *header, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per step (SmoothGrad: a third)")
    parser.add_argument("--model", default=None, help="NAME or NAME:VERSION (default: the chest X-ray model)")
    args = parser.parse_args(argv)
    model_line, table = measure(args.model, args.runs)
    print(render(model_line, table, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
