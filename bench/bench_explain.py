"""Benchmark: seconds per film of every explanation method, against Grad-CAM in the same run.

Run: ``nice -n 10 python bench/bench_explain.py [--films 8] [--model chest_xray:2]``
Films: the first ``--films`` of each class of ../shared/data/chest_xray/train (224 x 224 JPEGs, as the
dataset ships them), decoded and prepared once; each method then explains each film (wall clock of
``saliency.explain``: the map only, the film already prepared at the model's input size). One warm-up
film per method is not timed (tracing, SHAP's masker tree). Prints the median and p90 seconds per film
and the ratio of medians to Grad-CAM's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "chest_xray" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=8, help="films per class")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    from core.imaging import saliency
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image
    from core.imaging.methods import METHODS

    model = load_classifier(args.model)
    paths = [p for c in ("NORMAL", "PNEUMONIA") for p in sorted((DATA / c).glob("*.jpeg"))[: args.films]]
    decoded = [load_image(p).pixels for p in paths]
    sizes = {d.shape for d in decoded}
    films = [model.prepare(d) for d in decoded]
    seconds: dict[str, list[float]] = {}
    for method in METHODS:
        np.random.seed(0)
        saliency.explain(model, films[0], method)  # warm-up, not timed
        seconds[method] = []
        for film in films:
            started = time.perf_counter()
            saliency.explain(model, film, method)
            seconds[method].append(time.perf_counter() - started)
    base = statistics.median(seconds["gradcam"])
    print(f"{model.spec}: {len(films)} films of {sorted(sizes)} px, explained at the model's {model.input_size} px input")
    print(f"{'method':<18}{'median s':>10}{'p90 s':>10}{'x Grad-CAM':>12}")
    for method, values in seconds.items():
        median = statistics.median(values)
        print(f"{METHODS[method]:<18}{median:>10.3f}{np.percentile(values, 90):>10.3f}{median / base:>12.1f}")


if __name__ == "__main__":
    main()
