"""Labeled datasets arriving as a zip archive (upload bytes or a server path) or a server folder.

Every entry is checked BEFORE anything is extracted (count, total uncompressed size, per-entry
compression ratio, absolute / ``..`` / symlink names, encryption); archives are extracted under
``$LUCIDDX_HOME/datasets`` and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import config
from core.errors import InvalidDatasetError
from core.i18n import _

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


def import_upload(data: bytes, filename: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """An uploaded zip's bytes -> a checked, extracted dataset folder under ``datasets_dir()``."""
    if not data:
        raise InvalidDatasetError(_("{filename}: the upload is empty.").format(filename=filename))
    return extract_archive(data, filename, limits)
