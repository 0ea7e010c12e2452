"""Labeled datasets arriving as a server folder or a zip archive, and the report shown before training.

The data's journey: zip (upload bytes or a server path) -> every entry checked BEFORE anything is
extracted (count, total uncompressed size, per-entry compression ratio, absolute / ``..`` / symlink
names, encryption) -> extracted under ``$LUCIDDX_HOME/datasets`` (never elsewhere) -> folder with one
subfolder per class -> ``dataset_report``: counts, unreadable files with reasons, duplicates, sizes,
warnings and thumbnails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import stat
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core import config
from core.errors import InvalidDatasetError, LucidDxError
from core.i18n import _
from core.imaging.datasets import MIN_IMAGES_PER_CLASS, class_files, class_folders, is_image_file, loose_files
from core.imaging.door import load_image

THUMBNAILS_PER_CLASS = 4
THUMBNAIL_SIZE = 96
IMBALANCE_WARNING_RATIO = 2.0
SMALL_IMAGE_SIDE = 64
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on an archive, all checked from its directory before a single byte is extracted."""

    max_entries: int = 200_000
    max_total_bytes: int = 8 * 1024**3
    # Medical images compress a little (JPEG ~1x, PNG/DICOM 2-10x); a 100x entry is a bomb, not a scan.
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1024 * 1024


DEFAULT_LIMITS = ArchiveLimits()


def datasets_dir() -> Path:
    """Where uploaded and extracted datasets live: ``$LUCIDDX_HOME/datasets``."""
    return config.luciddx_home() / "datasets"


def _entry_parts(name: str) -> list[str]:
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _is_ignored_entry(parts: list[str]) -> bool:
    """macOS resource forks and hidden files (``__MACOSX/``, ``.DS_Store``) carry no images."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def check_archive(
    archive: zipfile.ZipFile, label: str, limits: ArchiveLimits = DEFAULT_LIMITS
) -> list[zipfile.ZipInfo]:
    """Validate every entry of ``archive`` from its directory; return the file entries to extract.

    Raises:
        InvalidDatasetError: too many entries, too large once uncompressed, an over-compressed entry,
            an entry that would land outside the extraction folder, a symlink or an encrypted entry.
    """
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidDatasetError(
            _(
                "{label}: the archive holds {count:,} entries, more than the {max_entries:,} allowed. Split the "
                "dataset, or put it in a folder on the server and give that path instead."
            ).format(label=label, count=len(infos), max_entries=limits.max_entries)
        )
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise InvalidDatasetError(
            _(
                "{label}: the archive would unpack to {size_mb:,.0f} MB, more than the {limit_mb:,.0f} MB allowed. "
                "Put the dataset in a folder on the server and give that path instead."
            ).format(label=label, size_mb=total / 1024**2, limit_mb=limits.max_total_bytes / 1024**2)
        )
    members: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.filename
        parts = _entry_parts(name)
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise InvalidDatasetError(
                _(
                    "{label}: entry '{name}' would be written outside the dataset folder (absolute path or '..'). "
                    "The archive is unsafe and was not extracted; re-create it from the dataset folder."
                ).format(label=label, name=name)
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidDatasetError(
                _(
                    "{label}: entry '{name}' is a symbolic link; links are refused because they can point outside "
                    "the dataset. Re-create the archive with the image files themselves."
                ).format(label=label, name=name)
            )
        if info.flag_bits & 0x1:
            raise InvalidDatasetError(
                _("{label}: entry '{name}' is encrypted; upload an archive without a password.").format(
                    label=label, name=name
                )
            )
        if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise InvalidDatasetError(
                _(
                    "{label}: entry '{name}' is compressed {ratio:,.0f}:1 (more than {max_ratio:.0f}:1 allowed); "
                    "that is the signature of a zip bomb, not of image files. The archive was not extracted."
                ).format(label=label, name=name, ratio=ratio, max_ratio=limits.max_ratio)
            )
        if info.is_dir() or not parts or _is_ignored_entry(parts):
            continue
        members.append(info)
    return members


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, label: str) -> None:
    """Copy one checked entry under ``dest``, refusing to write more bytes than its header declared."""
    target = dest.joinpath(*_entry_parts(info.filename))
    if not target.resolve().is_relative_to(dest.resolve()):  # belt and braces after check_archive
        raise InvalidDatasetError(
            _("{label}: entry '{filename}' would be written outside the dataset folder.").format(
                label=label, filename=info.filename
            )
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise InvalidDatasetError(
                    _("{label}: entry '{filename}' is larger than its header says; refused.").format(
                        label=label, filename=info.filename
                    )
                )
            sink.write(chunk)


def extract_archive(source: Path | bytes, label: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """Check, then extract a zip (a path or an upload's bytes) into a new folder under ``datasets_dir()``.

    Returns:
        The new folder (its name is random). The caller owns it; ``remove_dataset`` deletes it.
    Raises:
        InvalidDatasetError: not a zip, corrupt, or refused by ``check_archive``; nothing is left behind.
    """
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    if not zipfile.is_zipfile(handle):
        raise InvalidDatasetError(
            _(
                "{label}: not a zip archive. Give a .zip of a folder with one subfolder per class, or the path "
                "of such a folder on the server."
            ).format(label=label)
        )
    datasets_dir().mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(dir=datasets_dir(), prefix="dataset-"))
    try:
        with zipfile.ZipFile(handle) as archive:
            members = check_archive(archive, label, limits)
            for info in members:
                _extract_member(archive, info, dest, label)
    except InvalidDatasetError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InvalidDatasetError(
            _("{label}: the zip archive is damaged or uses an unsupported feature ({exc}).").format(
                label=label, exc=exc
            )
        ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def is_managed_dataset(folder: Path) -> bool:
    """True for folders this module extracted (safe to delete), never for a user's server folder."""
    return Path(folder).resolve().parent == datasets_dir().resolve()


def remove_dataset(folder: Path) -> None:
    """Delete a folder made by ``extract_archive``; anything else is refused (never a user's data)."""
    if not is_managed_dataset(folder):
        raise InvalidDatasetError(
            _("{folder}: not an extracted dataset of LucidDx; it was not deleted.").format(folder=folder)
        )
    shutil.rmtree(folder, ignore_errors=True)


MAX_TYPED_PATH = 4096
"""Longest path a person may type (Linux's PATH_MAX); each name in it at most 255 bytes (NAME_MAX)."""
_MAX_NAME_BYTES = 255


def typed_path(text: str | Path) -> Path:
    """A path a person typed (dashboard field, command line), checked before the file system sees it.

    A NUL byte or a path thousands of characters long makes the operating system raise instead of
    answering; here they are refused with a message, and the path itself is not repeated back.
    """
    raw = str(text)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise InvalidDatasetError(
            _(
                "The path contains a control character (such as a NUL byte or a line break); "
                "type or paste the folder's path as plain text."
            )
        )
    if len(raw) > MAX_TYPED_PATH:
        raise InvalidDatasetError(
            _(
                "The path is {length:,} characters long; paths on this server have at most "
                "{limit:,}. Check what was pasted."
            ).format(length=len(raw), limit=MAX_TYPED_PATH)
        )
    if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for part in Path(raw).parts):
        raise InvalidDatasetError(
            _(
                "A folder or file name in the path is longer than {limit} bytes, more than this "
                "server allows; check what was pasted."
            ).format(limit=_MAX_NAME_BYTES)
        )
    return Path(raw).expanduser()


def resolve_source(source: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> tuple[Path, bool]:
    """A server path (folder or .zip) as a folder: (folder, extracted_here)."""
    source = typed_path(source)
    if not source.exists():
        raise InvalidDatasetError(
            _("{source}: not found. Give a folder with one subfolder per class, or a .zip of one.").format(
                source=source
            )
        )
    if source.is_dir():
        return source, False
    return extract_archive(source, source.name, limits), True


@contextlib.contextmanager
def open_dataset(source: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> Iterator[Path]:
    """Yield a folder holding the class subfolders of ``source`` (a folder, or a zip extracted for the call)."""
    folder, extracted = resolve_source(source, limits)
    try:
        yield folder
    finally:
        if extracted:
            shutil.rmtree(folder, ignore_errors=True)


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


def import_upload(data: bytes, filename: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """An uploaded zip's bytes -> a checked, extracted dataset folder under ``datasets_dir()``."""
    if not data:
        raise InvalidDatasetError(_("{filename}: the upload is empty.").format(filename=filename))
    return extract_archive(data, filename, limits)
