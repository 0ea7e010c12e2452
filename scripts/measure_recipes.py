"""Compare training recipes on small data: the old default, the current default, and the automatic recipe.

    nice -n 10 .venv/bin/python scripts/measure_recipes.py [--sizes 100 300 1000] [--image-size 64]

Datasets: patient-wise subsets of the chest training folder (whole patients drawn at random until the
subset holds N films), and digits 3 vs 8 from scikit-learn's bundled set upscaled to 64 px greyscale PNGs
(a non-chest set that ships with an installed package). Each arm trains once (one seed) and registers
into a throwaway LUCIDDX_HOME; the AUC is the model's own held-out validation patients (the half of the
validation set that chose neither the epoch nor the threshold), as its card reports it.

Arms: (a) old default: standard augmentation, plateau decay with early stopping, up to 30 epochs;
(b) current default: strong augmentation, 3 cosine cycles, 12 epochs; (c) automatic: core.imaging.recipes.
Every arm trains at ``--image-size`` px (CPU budget), so (c)'s own size choice is not measured here; on
chest subsets (c) trains from scratch because the bundled chest model was trained on this very folder
(starting from it would score films it has seen).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHEST = Path("/work/shared/data/chest_xray/train")


def chest_subset(root: Path, n: int, seed: int, out: Path) -> Path:
    """Copies of whole patients of ``root`` drawn at random until ``n`` films."""
    from core.imaging import datasets

    by_patient: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in datasets.class_images(class_dir):
            by_patient[(class_dir.name, datasets.patient_group(f))].append(f)
    keys = sorted(by_patient)
    random.Random(seed).shuffle(keys)
    taken = 0
    for key in keys:
        if taken >= n:
            break
        for f in by_patient[key]:
            (out / key[0]).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, out / key[0] / f.name)  # copies: links leading out of a dataset are refused
            taken += 1
    return out


def digits_set(out: Path, size: int = 64, classes: tuple[int, int] = (3, 8)) -> Path:
    """Two classes of scikit-learn's bundled 8x8 digits, upscaled to ``size`` px greyscale PNGs."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for k in classes:
        (out / f"digit_{k}").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(digits.images[digits.target == k]):
            pixels = (np.asarray(img) / 16.0 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(out / f"digit_{k}" / f"d{k}_{i:04d}.png")
    return out


def arms(image_size: int, chest: bool) -> dict[str, dict]:
    old = {"augmentation": "standard", "snapshots": 0, "epochs": 30, "patience": 7}
    return {"old default": {"config": old}, "current default": {"config": {}},
            "automatic": {"explicit": {"init_from": ""} if chest else {}}}


def run_arm(folder: Path, name: str, arm: dict, image_size: int, seed: int) -> dict:
    from core.imaging.training import TrainConfig, train_image_model
    from core.services.training import automatic_config

    started = time.monotonic()
    recipe = None
    if "config" in arm:
        config = TrainConfig(image_size=image_size, seed=seed, **arm["config"])
    else:
        config, recipe = automatic_config(folder, arm["explicit"] | {"image_size": image_size, "seed": seed})
    result = train_image_model(folder, name, config, recipe=recipe)
    v = result.validation
    return {"auc": v["auc"], "n_holdout": v["n"], "epochs": result.epochs, "seconds": round(time.monotonic() - started, 1),
            "recipe": f"{config.augmentation}, {'%d cycles' % config.snapshots if config.snapshots else 'plateau'}, "
                      f"{config.epochs} ep" + (f", rule {recipe['reasons'][0]['code']} (smallest class "
                                               f"{recipe['facts']['smallest_class']}, chest-like {recipe['facts']['chest_like']})"
                                               if recipe else "")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="measure_recipes_"))
    os.environ["LUCIDDX_HOME"] = str(work / "home")
    sets = [(f"chest {n}", chest_subset(CHEST, n, args.seed, work / f"chest_{n}"), True) for n in args.sizes]
    if not args.no_digits:
        sets.append(("digits 3 vs 8", digits_set(work / "digits"), False))
    rows = []
    print(f"{'dataset':<16}{'images':>7}  {'arm':<16}{'AUC':>7}{'n':>5}{'epochs':>7}{'s':>7}  recipe", flush=True)
    for label, folder, chest in sets:
        n_images = sum(1 for _ in folder.rglob("*.*"))
        for arm_name, arm in arms(args.image_size, chest).items():
            r = run_arm(folder, "m" + str(len(rows)), arm, args.image_size, args.seed)
            rows.append({"dataset": label, "images": n_images, "arm": arm_name} | r)
            print(f"{label:<16}{n_images:>7}  {arm_name:<16}{r['auc']:>7.3f}{r['n_holdout']:>5}{r['epochs']:>7}"
                  f"{r['seconds']:>7.0f}  {r['recipe']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
