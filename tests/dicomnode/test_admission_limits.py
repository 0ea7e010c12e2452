"""Issue 22 items 1, 5 and 15 at the node: what is refused at C-STORE, with a failure status and a reason
that names the limit or the attribute, before anything is written, inflated past a limit, or decoded.
Limits are lowered so that megabytes stand for the attack's gigabytes."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom import AE

from core.dicomnode import admission
from core.imaging import dicom_index as index
from core.imaging import dicom
from tests.dicomnode.conftest import DX_FOR_PRESENTATION, chest_dx, storescu, wait_for

OUT_OF_RESOURCES = 0xA700


@pytest.mark.parametrize("attribute", ["StudyInstanceUID", "SeriesInstanceUID"])
def test_a_film_without_study_or_series_uid_is_refused_naming_it(node, isolated_home: Path, tmp_path: Path,
                                                                  attribute: str) -> None:
    path = tmp_path / "no-uid.dcm"
    source = chest_dx(path)
    ds = pydicom.dcmread(path)
    delattr(ds, attribute)
    ds.save_as(path, enforce_file_format=True)
    sent = storescu(node.port, path)
    assert sent.returncode != 0 or "0xa900" in (sent.stdout + sent.stderr).lower()  # a failure status
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "refused" and attribute in entry.reason
    assert not index.incoming_path(source.SOPInstanceUID, isolated_home).exists()


def _send(port: int, ds: pydicom.Dataset, syntax: str) -> pydicom.Dataset:
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(DX_FOR_PRESENTATION, [syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="LUCIDDX")
    assert assoc.is_established
    try:
        return assoc.send_c_store(ds)
    finally:
        assoc.release()


def test_a_deflate_bomb_is_refused_while_inflating(node, isolated_home: Path, tmp_path: Path, monkeypatch) -> None:
    """32 MB of zeros in a private element deflate to a few tens of KB; the node stops inflating at 4 MB."""
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 4 * 1024**2)
    source = chest_dx(tmp_path / "bomb.dcm")
    source.private_block(0x0011, "LUCIDDX PROBE", create=True).add_new(0x01, "OB", bytes(32 * 1024**2))
    source.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    status = _send(node.port, source, DeflatedExplicitVRLittleEndian)
    assert status.Status == OUT_OF_RESOURCES and "4 MB limit" in status.ErrorComment
    entry = index.get(source.SOPInstanceUID, isolated_home)
    assert entry.status == "refused" and "4 MB limit" in entry.reason
    assert not index.incoming_path(source.SOPInstanceUID, isolated_home).exists()


def test_a_film_over_the_pixel_limit_is_refused_before_decoding(node, isolated_home: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(admission, "MAX_INSTANCE_PIXEL_BYTES", 1024)  # the small sample film stands for a 98 MB one
    source = chest_dx(tmp_path / "big.dcm")
    assert storescu(node.port, tmp_path / "big.dcm").returncode != 0
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "refused" and "limit per instance" in entry.reason and "Pixel data" in entry.reason
    assert not index.incoming_path(source.SOPInstanceUID, isolated_home).exists()


def test_a_huge_header_element_is_refused_naming_the_limit(node, isolated_home: Path, tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(dicom, "MAX_ELEMENT_BYTES", 1024**2)
    source = chest_dx(tmp_path / "padded.dcm")
    source.private_block(0x0011, "LUCIDDX PROBE", create=True).add_new(0x01, "OB", bytes(2 * 1024**2))
    status = _send(node.port, source, "1.2.840.10008.1.2.1")
    assert status.Status == OUT_OF_RESOURCES and "1 MB limit" in status.ErrorComment
    assert index.get(source.SOPInstanceUID, isolated_home).status == "refused"
