"""Labeled image folders: the ONE lister (one subfolder per class) and the patient-wise split.

Training, the dataset report (intake), evaluation and the OOD measurement all list files here, so
they agree on what a class folder holds: every file at any depth, minus hidden files and folders
and archive debris (``.*``, ``__MACOSX``...). ``class_files`` lists them all (the report names the
ones that are not images); ``class_images`` keeps the image types LucidDx reads.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from core.errors import InvalidDatasetError
from core.i18n import _

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".dic", ""}
MIN_IMAGES_PER_CLASS = 5


@dataclass
class LabeledDataset:
    """Image files with integer labels; ``classes[label]`` is the folder name."""

    root: Path
    classes: list[str]
    files: list[Path]
    labels: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}

    def keep(self, mask: np.ndarray, skipped: list[dict[str, str]] | None = None) -> LabeledDataset:
        """The files where ``mask`` (N,) bool is True, with ``skipped`` recorded."""
        files = [f for f, k in zip(self.files, mask) if k]
        return LabeledDataset(self.root, self.classes, files, self.labels[mask], list(skipped or self.skipped))


def redacted(skipped: list[dict[str, str]]) -> list[dict[str, str]]:
    """Skipped files as they may be stored: each name (names often carry a patient's) replaced by a token.

    The token is the first 12 hex digits of the name's SHA-256, so the person who holds the files can
    still find the one meant (``sha256sum`` of the name), and nobody else learns it.
    """
    out = []
    for item in skipped:
        token = "file-" + hashlib.sha256(item["file"].encode()).hexdigest()[:12]
        out.append({"file": token, "error": item["error"].replace(item["file"], token)})
    return out


def is_ignored_folder(path: Path) -> bool:
    """Folders that are never classes: hidden ones and archive debris such as __MACOSX."""
    return path.name.startswith((".", "__"))


def is_image_file(path: Path) -> bool:
    """A file whose extension LucidDx reads (DICOM may have none)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def inside(path: Path, folder: Path) -> Path:
    """``path`` if it resolves (links followed) inside ``folder``; refused, naming the link, if it leads out.

    A dataset folder on the server is read with the server's permissions: a class folder or file linked to
    /etc or another patient archive would otherwise be listed, thumbnailed, trained on and locked.
    The link's target is never named (it may be a server path nobody should learn).
    """
    shown = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name
    try:
        escaped = not path.resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, or a path the system cannot resolve
        escaped = True
    if escaped:
        raise InvalidDatasetError(
            _(
                "{name}: is a link that leads outside the dataset folder {folder}; LucidDx reads "
                "only what is inside the folder it is given. Remove the link, or copy the files "
                "into the folder."
            ).format(name=shown, folder=Path(folder).name)
        )
    return path


def class_files(class_dir: Path) -> list[Path]:
    """Every file of one class folder (any depth), sorted, without hidden files or ignored folders.

    Links may point elsewhere inside the dataset (the folder holding the classes), never outside it.
    """
    return sorted(
        inside(p, Path(class_dir).parent)
        for p in Path(class_dir).rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and not any(is_ignored_folder(Path(part)) for part in p.relative_to(class_dir).parts[:-1])
    )


def archive_images(root: Path) -> tuple[list[Path], list[Path]]:
    """(every image file under ``root`` at any depth, the links among them that lead outside ``root``).

    An archive is scored file by file, so a link out of it is reported on its own and never read,
    instead of refusing the whole archive as a training dataset is.
    """
    films, escaping = [], []
    for path in sorted(Path(root).rglob("*")):
        if any(is_ignored_folder(Path(part)) for part in path.relative_to(root).parts[:-1]):
            continue
        if path.is_file() and is_image_file(path) and not path.name.startswith("."):
            try:
                films.append(inside(path, Path(root)))
            except InvalidDatasetError:
                escaping.append(path)
    return films, escaping


def class_images(class_dir: Path) -> list[Path]:
    """The image files of one class folder (``class_files`` with an image extension)."""
    return [p for p in class_files(class_dir) if is_image_file(p)]


def loose_files(folder: Path) -> list[Path]:
    """Non-hidden files lying directly in ``folder`` (beside the class folders)."""
    return sorted(inside(p, Path(folder)) for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))


def find_class_root(root: Path) -> Path:
    """The folder whose subfolders are the classes; a single wrapping folder is looked through."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDatasetError(
            _("{root}: not a folder. Give a folder with one subfolder per class.").format(root=root)
        )
    current = root
    for _attempt in range(3):
        subdirs = subfolders(current)
        if len(subdirs) == 1 and not any(is_image_file(p) for p in loose_files(current)):
            current = subdirs[0]
            continue
        break
    return current


def subfolders(folder: Path) -> list[Path]:
    """The candidate class folders of ``folder``, sorted by name."""
    return sorted(inside(p, Path(folder)) for p in Path(folder).iterdir() if p.is_dir() and not is_ignored_folder(p))


def class_folders(root: Path, shown_as: str | None = None) -> tuple[Path, list[Path]]:
    """(the folder holding the classes, its class subfolders sorted by name); at least two.

    Raises:
        InvalidDatasetError: fewer than two class subfolders (``shown_as`` names the dataset).
    """
    class_root = find_class_root(Path(root))
    class_dirs = subfolders(class_root)
    if len(class_dirs) < 2:
        found = ", ".join(p.name for p in class_dirs) or "none"
        raise InvalidDatasetError(
            _(
                "{folder}: found {count} class folder(s) ({found}); a classifier needs at least two subfolders, "
                "one per class, each holding that class's images."
            ).format(folder=shown_as or root, count=len(class_dirs), found=found)
        )
    return class_root, class_dirs


def scan_labeled_folder(root: Path, max_per_class: int | None = None, seed: int = 0) -> LabeledDataset:
    """List the images of a labeled folder. Raises InvalidDatasetError if it cannot train a model."""
    class_root, class_dirs = class_folders(root)
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        members = class_images(class_dir)
        if max_per_class is not None and len(members) > max_per_class:
            members = sorted(rng.choice(members, size=max_per_class, replace=False).tolist())
        files.extend(members)
        labels.extend([label] * len(members))
    dataset = LabeledDataset(class_root, [p.name for p in class_dirs], files, np.asarray(labels, dtype=np.int64))
    require_enough_images(dataset, str(root))
    return dataset


def require_enough_images(dataset: LabeledDataset, where: str) -> None:
    """Raises InvalidDatasetError naming every class with fewer than MIN_IMAGES_PER_CLASS images."""
    thin = {c: n for c, n in dataset.counts().items() if n < MIN_IMAGES_PER_CLASS}
    if thin:
        listing = _(", ").join(_("'{name}' has {count}").format(name=c, count=n) for c, n in thin.items())
        raise InvalidDatasetError(
            _("{where}: too few usable images ({listing}); each class needs at least {minimum}.").format(
                where=where, listing=listing, minimum=MIN_IMAGES_PER_CLASS
            )
        )


_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),  # Kermany pneumonia files: person12_bacteria_45
    re.compile(r"^((?:[A-Z0-9]+-)?IM-\d+)-", re.IGNORECASE),  # Kermany normals: IM-0115-0001, NORMAL2-IM-...
)


def patient_group(path: Path) -> str:
    """The patient a file belongs to, from its name; files with no recognisable patient stand alone."""
    stem = path.stem
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1).lower()
    generic = re.match(r"^(.+?)[-_ ]+(?:\d+|img\d+|view\d+)$", stem, re.IGNORECASE)
    return (generic.group(1) if generic else stem).lower()


def _n_splits(validation_fraction: float) -> int:
    return max(2, int(round(1.0 / validation_fraction)))


def split_groups(dataset: LabeledDataset, validation_fraction: float) -> tuple[np.ndarray, bool]:
    """Group of each file for the split, and whether the groups are patients read from file names.

    When a class has fewer name-derived patients than the split has folds (names such as scan_001 ...
    scan_040 all read as one patient), names carry no usable patient and every file stands alone.
    """
    groups = np.asarray([patient_group(p) for p in dataset.files])
    n_splits = _n_splits(validation_fraction)
    by_patient = all(len(np.unique(groups[dataset.labels == k])) >= n_splits for k in range(len(dataset.classes)))
    return (groups if by_patient else np.asarray([str(p) for p in dataset.files])), by_patient


def split_by_patient(dataset: LabeledDataset, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices with every patient's files on one side only."""
    groups, _sizes = split_groups(dataset, validation_fraction)
    splitter = StratifiedGroupKFold(n_splits=_n_splits(validation_fraction), shuffle=True, random_state=seed)
    try:
        train_idx, val_idx = next(splitter.split(np.zeros(len(groups)), dataset.labels, groups))
    except ValueError as exc:
        raise InvalidDatasetError(
            _("{root}: too few images to hold out a validation set; add images.").format(root=dataset.root)
        ) from exc
    if len(np.unique(dataset.labels[val_idx])) < len(dataset.classes):
        raise InvalidDatasetError(
            _("{root}: too few patients to give every class a validation image; add images.").format(root=dataset.root)
        )
    return train_idx, val_idx
