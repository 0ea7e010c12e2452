"""A header value is never quoted (issue 22 item 13): free text typed into Body Part Examined, Modality,
Photometric Interpretation or the transfer syntax reaches neither the index (index.sqlite), the node's
log, the ErrorComment sent back, nor the image door's notes and metadata. Reasons name the attribute."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pynetdicom import AE

from core.imaging import dicom as door_dicom
from tests.dicomnode.conftest import DX_FOR_PRESENTATION, chest_dx, wait_for

SECRET = "ZEBRAFISH WALTER"


def _send(port: int, path: Path) -> pydicom.Dataset:
    """C-STORE ``path`` with pynetdicom; the status dataset the node answered (ErrorComment included)."""
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(DX_FOR_PRESENTATION, ["1.2.840.10008.1.2.1"])
    assoc = ae.associate("127.0.0.1", port, ae_title="LUCIDDX")
    assert assoc.is_established
    status = assoc.send_c_store(pydicom.dcmread(path))
    assoc.release()
    return status


def _nowhere(home: Path, caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    stored = b"".join(p.read_bytes() for p in home.rglob("index.sqlite*") if p.is_file())
    assert stored, "the index was not found"
    for text in texts:
        for word in text.split():
            assert word.encode() not in stored and word not in caplog.text, word


def test_free_text_body_part_is_refused_naming_the_attribute_only(node, isolated_home: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = chest_dx(tmp_path / "film.dcm", body_part=SECRET)
    status = _send(node.port, tmp_path / "film.dcm")
    assert status.Status != 0 and "Body Part Examined" in status.ErrorComment
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "refused" and "Body Part Examined" in entry.reason
    assert "ZEBRAFISH" not in status.ErrorComment and "WALTER" not in status.ErrorComment
    assert "ZEBRAFISH" not in entry.reason and "WALTER" not in entry.reason
    _nowhere(isolated_home, caplog, SECRET)


def test_a_free_text_modality_is_not_recorded(node, isolated_home: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = chest_dx(tmp_path / "film.dcm")
    source.Modality = "WALTER"
    source.save_as(tmp_path / "film.dcm", enforce_file_format=True)
    assert _send(node.port, tmp_path / "film.dcm").Status == 0
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.modality == "DX"  # the SOP class's, not the header's free text
    _nowhere(isolated_home, caplog, "WALTER")


def test_the_image_door_never_quotes_a_made_up_photometric_or_transfer_syntax() -> None:
    ds = pydicom.Dataset()
    ds.PhotometricInterpretation = SECRET
    ds.BitsStored = 8
    _grey, notes = door_dicom._dicom_to_grey(np.zeros((4, 4, 3), np.uint8), ds)
    assert notes == ["Colour image converted to greyscale."]
    ds.PhotometricInterpretation = "RGB"
    assert door_dicom._dicom_to_grey(np.zeros((4, 4, 3), np.uint8), ds)[1] == ["RGB colour image converted to greyscale."]
    assert door_dicom.syntax_name(SECRET) == "an unknown transfer syntax"
    assert door_dicom.syntax_name("1.2.840.10008.1.2.4.50") == "JPEG Baseline (Process 1)"
    with pytest.raises(Exception) as raised:
        door_dicom._check_decoder(SECRET, "film.dcm")
    assert "ZEBRAFISH" not in str(raised.value) and "unknown transfer syntax" in str(raised.value)
