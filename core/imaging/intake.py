"""Labeled datasets arriving as a server folder or a zip archive, and the report shown before training.

The data's journey: zip (upload bytes or a server path) -> checked and extracted by
``core.imaging.archives`` (re-exported here) -> folder with one subfolder per class ->
``dataset_report``: counts, unreadable files with reasons, duplicates, sizes, warnings and thumbnails.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import LucidDxError
from core.i18n import _
from core.imaging.archives import (
    DEFAULT_LIMITS,
    MAX_TYPED_PATH,
    ArchiveLimits,
    check_archive,
    datasets_dir,
    extract_archive,
    import_upload,
    is_managed_dataset,
    open_dataset,
    remove_dataset,
    resolve_source,
    typed_path,
)
from core.imaging.datasets import MIN_IMAGES_PER_CLASS, class_files, class_folders, is_image_file, loose_files
from core.imaging.door import load_image

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_TYPED_PATH",
    "ArchiveLimits",
    "DatasetReport",
    "check_archive",
    "dataset_report",
    "datasets_dir",
    "extract_archive",
    "import_upload",
    "is_managed_dataset",
    "open_dataset",
    "remove_dataset",
    "resolve_source",
    "typed_path",
]

THUMBNAILS_PER_CLASS = 4
THUMBNAIL_SIZE = 96
IMBALANCE_WARNING_RATIO = 2.0
SMALL_IMAGE_SIDE = 64


@dataclass
class DatasetReport:
    """What a labeled folder holds, measured before any training.

    ``thumbnails[class]`` are uint8 (h, w) greyscale arrays, longest side ``THUMBNAIL_SIZE``;
    ``sizes`` are (height, width) in pixels of every readable image.
    """

    root: Path
    classes: list[str]
    counts: dict[str, int]
    unreadable: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    thumbnails: dict[str, list[np.ndarray]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the dataset can train a model (warnings allowed, problems not)."""
        return not self.problems

    @property
    def n_images(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def cross_class_duplicates(self) -> list[dict[str, Any]]:
        return [d for d in self.duplicates if d["cross_class"]]

    def size_summary(self) -> dict[str, Any]:
        """Min / median / max height and width, and how many distinct sizes there are."""
        if not self.sizes:
            return {"distinct": 0}
        arr = np.asarray(self.sizes)
        return {
            "distinct": len(set(self.sizes)),
            "height": {"min": int(arr[:, 0].min()), "median": float(np.median(arr[:, 0])), "max": int(arr[:, 0].max())},
            "width": {"min": int(arr[:, 1].min()), "median": float(np.median(arr[:, 1])), "max": int(arr[:, 1].max())},
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no thumbnails, no per-image sizes)."""
        return {
            "root": str(self.root),
            "classes": self.counts,
            "unreadable": self.unreadable,
            "duplicates": self.duplicates,
            "sizes": self.size_summary(),
            "warnings": self.warnings,
            "problems": self.problems,
            "ok": self.ok,
        }


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] -> uint8 (h, w), longest side at most THUMBNAIL_SIZE."""
    image = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8))
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return np.asarray(image)


def dataset_report(folder: Path, progress: Callable[[int, int], None] | None = None) -> DatasetReport:
    """Read every file of a labeled folder once and report what training would see.

    Unreadable files are listed with their reasons and skipped, never fatal.

    Raises:
        InvalidDatasetError: the folder is missing or has fewer than two class subfolders.
    """
    class_root, class_dirs = class_folders(Path(folder), shown_as=Path(folder).name)
    report = DatasetReport(root=class_root, classes=[p.name for p in class_dirs], counts={})
    hashes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    all_files = [(d.name, f) for d in class_dirs for f in class_files(d)]
    for i, (class_name, path) in enumerate(all_files):
        relative = path.relative_to(class_root).as_posix()
        report.counts.setdefault(class_name, 0)
        if not is_image_file(path):
            report.unreadable.append(
                {
                    "file": relative,
                    "class": class_name,
                    "error": _("'{suffix}' is not an image type LucidDx reads; ignored.").format(suffix=path.suffix),
                }
            )
            continue
        try:
            data = path.read_bytes()
            image = load_image(data, name=relative)
        except LucidDxError as exc:
            report.unreadable.append({"file": relative, "class": class_name, "error": str(exc)})
            continue
        except OSError as exc:  # unreadable on disk (permissions, vanished): skipped like a bad image
            report.unreadable.append(
                {
                    "file": relative,
                    "class": class_name,
                    "error": _("{relative}: could not be read ({reason}).").format(
                        relative=relative, reason=exc.strerror or type(exc).__name__
                    ),
                }
            )
            continue
        report.counts[class_name] += 1
        hashes[hashlib.sha256(data).hexdigest()].append((relative, class_name))
        report.sizes.append((int(image.pixels.shape[0]), int(image.pixels.shape[1])))
        thumbs = report.thumbnails.setdefault(class_name, [])
        if len(thumbs) < THUMBNAILS_PER_CLASS:
            thumbs.append(_thumbnail(image.pixels))
        if progress and (i % 50 == 0 or i == len(all_files) - 1):
            progress(i + 1, len(all_files))
    for class_name in report.classes:
        report.counts.setdefault(class_name, 0)
    report.duplicates = [
        {
            "files": [f for f, _c in group],
            "classes": sorted({c for _f, c in group}),
            "cross_class": len({c for _f, c in group}) > 1,
        }
        for group in hashes.values()
        if len(group) > 1
    ]
    _add_findings(report, loose_files(class_root))
    return report


def _add_findings(report: DatasetReport, loose_files: list[Path]) -> None:
    """Blocking problems (too few images) and warnings (imbalance, duplicates, small or mixed sizes)."""
    thin = {c: n for c, n in report.counts.items() if n < MIN_IMAGES_PER_CLASS}
    if thin:
        listing = ", ".join(f"'{c}' has {n}" for c, n in thin.items())
        report.problems.append(
            _(
                "Too few readable images ({listing}); each class needs at least {minimum} (a few "
                "hundred per class give a useful model)."
            ).format(listing=listing, minimum=MIN_IMAGES_PER_CLASS)
        )
    populated = {c: n for c, n in report.counts.items() if n > 0}
    if len(populated) >= 2:
        big, small = max(populated, key=populated.get), min(populated, key=populated.get)
        ratio = populated[big] / populated[small]
        if ratio >= IMBALANCE_WARNING_RATIO:
            report.warnings.append(
                _(
                    "Class imbalance: '{big}' has {ratio:.1f}x as many images as '{small}'. Training weighs the "
                    "classes to compensate and picks the threshold on validation; judge the model by sensitivity and "
                    "specificity."
                ).format(big=big, ratio=ratio, small=small)
            )
    cross = report.cross_class_duplicates
    if cross:
        report.warnings.append(
            _(
                "{count} image(s) appear with identical content in more than one class folder (e.g. {items}): "
                "their label is contradictory; remove them from the wrong folder."
            ).format(count=len(cross), items=", ".join(cross[0]["files"]))
        )
    within = [d for d in report.duplicates if not d["cross_class"]]
    if within:
        extra = sum(len(d["files"]) - 1 for d in within)
        report.warnings.append(
            _(
                "{extra} exact duplicate file(s) within a class (e.g. {items}): copies may land on both sides of "
                "the train/validation split and flatter the validation figures."
            ).format(extra=extra, items=", ".join(within[0]["files"]))
        )
    if report.sizes and min(min(s) for s in report.sizes) < SMALL_IMAGE_SIDE:
        report.warnings.append(
            _("Some images are smaller than {side} px on a side; they will be upscaled.").format(side=SMALL_IMAGE_SIDE)
        )
    if report.unreadable:
        report.warnings.append(
            _("{count} file(s) cannot be read and will be skipped (listed below).").format(count=len(report.unreadable))
        )
    if loose_files:
        report.warnings.append(
            _(
                "{count} file(s) lie beside the class folders (e.g. {name}) and are ignored: only files inside a "
                "class folder are used."
            ).format(count=len(loose_files), name=loose_files[0].name)
        )
