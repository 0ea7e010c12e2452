"""What the DICOM node (a front end) needs below it, behind one door: the image door's size checks for an
instance and the node's own index of received instances and their results.

The index is SQLite (``core.imaging.dicom_index``) because each node keeps its own queue on local disk and
must work before and without the account database; the worklist reads it through ``core.services.worklist``.
"""

from __future__ import annotations

import io
from pathlib import Path

from pydicom.dataset import Dataset

from core.errors import UnsupportedImageError
from core.imaging import dicom
from core.imaging import dicom_index as _index
from core.imaging.outputs import Prediction

__all__ = [
    "Entry",
    "Prediction",
    "incoming_path",
    "inflates_too_far",
    "element_too_large",
    "is_uid",
    "max_element_bytes",
    "max_inflated_bytes",
    "now_text",
    "put",
    "results_dir",
    "update",
    "write_atomically",
]

Entry = _index.Entry


def max_inflated_bytes() -> int:
    """The image door's limit on a deflated instance's inflated size (read when asked: it may be configured)."""
    return dicom.MAX_INFLATED_BYTES


def max_element_bytes() -> int:
    """The image door's limit on one header element."""
    return dicom.MAX_ELEMENT_BYTES


def inflates_too_far(data: bytes) -> bool:
    """Whether a deflated instance inflates past the image door's limit (counted while inflating, never after)."""
    try:
        dicom.check_inflated_size(io.BytesIO(data), "instance")
    except UnsupportedImageError:
        return True
    return False


def element_too_large(header: Dataset) -> bool:
    """Whether one header element is past the image door's per-element limit."""
    try:
        dicom.check_element_sizes(header, "instance")
    except UnsupportedImageError:
        return True
    return False


def now_text() -> str:
    return _index.now_text()


def is_uid(text: object) -> bool:
    return _index.is_uid(text)


def incoming_path(uid: str, home: Path | None = None) -> Path:
    return _index.incoming_path(uid, home)


def results_dir(uid: str, home: Path | None = None) -> Path:
    return _index.results_dir(uid, home)


def write_atomically(path: Path, data: bytes) -> None:
    _index.write_atomically(path, data)


def put(entry: Entry, home: Path | None = None) -> None:
    _index.put(entry, home)


def update(uid: str, home: Path | None = None, **fields: object) -> None:
    _index.update(uid, home, **fields)


def unfinished(home: Path | None = None) -> list[Entry]:
    """Instances the node accepted (answered success to the sender) but never finished scoring."""
    return _index.unfinished(home)
