"""How long the PDF case report's layout takes, English and Chinese (the Chinese one subsets and embeds
Noto Sans CJK SC for its characters; see core/reports/cjk_font.py).

    .venv/bin/python bench/bench_report.py [--runs 5] [--films 1]

Times ``core.reports.render`` only (no model: the films are bundled samples and their overlay is the
film itself), median of ``--runs``. "new text" puts a new Chinese character in the film's name every
run, so each run subsets the font again (the worst case); "same text" repeats one report (font reused).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core.reports import FilmPage, render
from core.services import catalog

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"


def pages(films: int, tag: str) -> list[FilmPage]:
    pixels = np.asarray(Image.open(SAMPLE).convert("L"))
    prediction = {"label": "PNEUMONIA", "probabilities": {"NORMAL": 0.1, "PNEUMONIA": 0.9}, "threshold": 0.155,
                  "positive_class": "PNEUMONIA", "out_of_distribution": False, "model": "chest_xray:1"}
    overlay = np.stack([pixels] * 3, axis=-1)
    return [FilmPage(f"胸片{tag}-{i}.jpeg", pixels, overlay, prediction, "gradcam", "PNEUMONIA") for i in range(films)]


def timed(lang: str, films: int, runs: int, fresh: bool) -> list[float]:
    summary = catalog.card_summary(catalog.model_card("chest_xray"))
    seconds = []
    for run in range(runs):
        start = time.perf_counter()
        render(pages(films, chr(0x4E00 + 37 * run) if fresh else "x"), summary, lang)  # a new CJK character: a new subset
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--films", type=int, default=1)
    args = parser.parse_args()
    print(f"| report ({args.films} film(s)) | first run (s) | median of {args.runs} (s) | max (s) |")
    print("|---|---|---|---|")
    for lang, fresh, label in (("en", False, "English"), ("zh", True, "Chinese, new text each run"),
                               ("zh", False, "Chinese, same text")):
        seconds = timed(lang, args.films, args.runs, fresh)
        print(f"| {label} | {seconds[0]:.3f} | {statistics.median(seconds):.3f} | {max(seconds):.3f} |")


if __name__ == "__main__":
    main()
