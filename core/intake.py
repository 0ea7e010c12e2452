"""Datasets arriving as a folder or a zip archive (minimal: folders; archives arrive with issue 5)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from core.errors import InvalidDatasetError


@contextlib.contextmanager
def open_dataset(source: Path) -> Iterator[Path]:
    """Yield a folder holding the class subfolders of ``source`` (a folder for now)."""
    if not source.exists():
        raise InvalidDatasetError(f"{source}: not found.")
    if not source.is_dir():
        raise InvalidDatasetError(f"{source}: not a folder with one subfolder per class.")
    yield source
