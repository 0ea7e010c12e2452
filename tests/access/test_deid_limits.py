"""Issue 22 item 1 through de-identification (CLI ``deidentify`` and the diagnosis page's copy): a deflate
bomb is refused while inflating, naming the limit, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from core.errors import UnsupportedImageError
from core.imaging import dicom
from core.services import deid
from tests.imaging.test_dicom_limits import padded


def test_a_deflate_bomb_is_not_inflated_for_deidentification(isolated_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 2 * 1024**2)
    bomb = padded(DeflatedExplicitVRLittleEndian, 64 * 1024**2)
    (tmp_path / "bomb.dcm").write_bytes(bomb)
    with pytest.raises(UnsupportedImageError, match="bomb.dcm: .*2 MB limit"):
        deid.deidentify_file(None, tmp_path / "bomb.dcm", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    with pytest.raises(UnsupportedImageError, match="upload.dcm: .*2 MB limit"):
        deid.deidentified(bomb, "upload.dcm")
    small = padded(DeflatedExplicitVRLittleEndian, 16)
    assert deid.deidentified(small, "ok.dcm").data  # an ordinary deflated file is still de-identified
