"""Issue 22 item 1 at the image door (CLI predict, the pages and the REST API all come through it): a deflate
bomb is refused while inflating, and one huge header element is refused by length before it is read, in
every transfer syntax. Limits are lowered so that megabytes stand for the attack's gigabyte."""

from __future__ import annotations

import io
import tracemalloc

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.errors import UnsupportedImageError
from core.imaging import dicom
from core.imaging.door import load_image


def padded(syntax: str, size: int) -> bytes:
    """A real CT slice with a private element of ``size`` zero bytes, saved in ``syntax``."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.private_block(0x0011, "LUCIDDX PROBE", create=True).add_new(0x01, "OB", bytes(size))
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_deflate_bomb_is_refused_while_inflating_not_after(monkeypatch) -> None:
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 2 * 1024**2)
    bomb = padded(DeflatedExplicitVRLittleEndian, 64 * 1024**2)
    assert len(bomb) < 200_000  # 64 MB inflated from a file this small
    tracemalloc.start()
    try:
        with pytest.raises(UnsupportedImageError, match="bomb.dcm: .*more than the 2 MB limit"):
            load_image(bomb, "bomb.dcm")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2  # inflating it whole would have taken 64 MB


def test_a_small_deflated_film_still_decodes() -> None:
    assert load_image(padded(DeflatedExplicitVRLittleEndian, 16), "ok.dcm").shape == (128, 128)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_a_huge_header_element_is_refused_naming_the_limit(monkeypatch, syntax: str) -> None:
    monkeypatch.setattr(dicom, "MAX_ELEMENT_BYTES", 1024**2)
    with pytest.raises(UnsupportedImageError, match="big.dcm: a DICOM header element holds 3 MB, more than the 1 MB"):
        load_image(padded(syntax, 3 * 1024**2), "big.dcm")
