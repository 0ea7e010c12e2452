"""Reading an upload: its bytes, within the image door's size limit, before anything decodes them."""

from __future__ import annotations

from starlette.datastructures import UploadFile

from core.errors import UploadTooLargeError
from core.i18n import _
from core.services.imaging import MAX_UPLOAD_MB

MAX_BYTES = MAX_UPLOAD_MB * 1024**2
CHUNK = 1024**2


def upload_limit() -> int:
    """The image upload limit in bytes, read at call time (tests lower it)."""
    return MAX_BYTES


def display_name(upload: UploadFile) -> str:
    """The name messages and results use: the client's file name (last path part), else 'upload'."""
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or "upload"


def read_upload(upload: UploadFile, limit: int | None = None) -> bytes:
    """The whole upload; UploadTooLargeError (413) past ``limit``. Empty or unreadable bytes are the door's to judge."""
    name = display_name(upload)
    limit = MAX_BYTES if limit is None else limit
    parts, size = [], 0
    while chunk := upload.file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(
                _(
                    "{name}: the upload is larger than the {limit} MB limit; export a single "
                    "image, or a smaller or compressed copy."
                ).format(name=name, limit=limit // 1024**2)
            )
        parts.append(chunk)
    return b"".join(parts)
