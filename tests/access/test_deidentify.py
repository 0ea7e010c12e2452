"""De-identification on real DICOM files (pydicom's bundled test files): no patient name, ID or dates
left, the result flagged as de-identified, burned-in annotation reported, and non-DICOM refused."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from core.access.deidentify import deidentify_file
from core.errors import UnsupportedImageError

SAMPLES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm"]
DATE_VRS = {"DA", "DT"}


def _identified_copy(name: str, folder: Path, burned_in: str | None = None) -> tuple[Path, pydicom.Dataset]:
    """A copy of a test file carrying more identifying fields, saved under a patient-like file name."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    dataset.PatientName, dataset.PatientID = "Doe^Jane", "MRN-0042"
    dataset.PatientBirthDate, dataset.StudyDate, dataset.InstitutionName = "19700101", "20240102", "St Elsewhere"
    dataset.OtherPatientIDs = "ALT-77"
    block = dataset.private_block(0x0011, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "private note on Jane")
    if burned_in:
        dataset.BurnedInAnnotation = burned_in
    path = folder / "Doe_Jane_MRN-0042.dcm"
    dataset.save_as(path, enforce_file_format=False)
    return path, dataset


def _all_values(dataset: pydicom.Dataset) -> list[tuple[str, str]]:
    found = []
    for element in dataset.iterall():
        if element.VR not in ("SQ", "OB", "OW", "OF", "UN"):
            found.append((element.VR, str(element.value)))
    return found


@pytest.mark.parametrize("name", SAMPLES)
def test_no_patient_fields_or_dates_are_left(name: str, tmp_path: Path) -> None:
    source, original = _identified_copy(name, tmp_path)
    result = deidentify_file(source, tmp_path / "out")
    out = pydicom.dcmread(result.out)
    assert "Doe" not in Path(result.out).name and Path(result.out).parent == tmp_path / "out"
    assert str(out.get("PatientName", "")) in ("", "ANONYMIZED")
    assert str(out.get("PatientID", "")) in ("", "ANONYMIZED")
    assert "OtherPatientIDs" not in out and str(out.get("InstitutionName", "")) in ("", "ANONYMIZED")
    texts = " ".join(value for _, value in _all_values(out))
    for secret in ("Doe", "Jane", "MRN-0042", "ALT-77", "Elsewhere", "19700101", "20240102",
                   str(original.get("PatientName")), str(original.get("StudyDate"))):
        assert secret not in texts, secret
    assert all(value in ("", "00010101", "00010101010101.000000+0000") for vr, value in _all_values(out) if vr in DATE_VRS)
    assert not any(element.tag.is_private for element in out.iterall())
    assert out.PatientIdentityRemoved == "YES" and "Annex E Basic Profile" in out.DeidentificationMethod
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert out.SOPInstanceUID != original.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert result.removed >= 6 and result.burned_in_annotation == "unknown" and len(result.sha256) == 64
    assert out.pixel_array.shape == original.pixel_array.shape if "PixelData" in original else True


@pytest.mark.parametrize("flag", ["YES", "NO"])
def test_burned_in_annotation_is_reported(flag: str, tmp_path: Path) -> None:
    source, _ = _identified_copy("CT_small.dcm", tmp_path, burned_in=flag)
    assert deidentify_file(source, tmp_path / "out").burned_in_annotation == flag


@pytest.mark.parametrize("content", [b"", b"not a dicom file at all", b"\x89PNG\r\n\x1a\n" + bytes(64)])
def test_non_dicom_is_refused_and_nothing_is_written(content: bytes, tmp_path: Path) -> None:
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(content)
    with pytest.raises(UnsupportedImageError, match="scan.dcm"):
        deidentify_file(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(UnsupportedImageError, match="not found"):
        deidentify_file(tmp_path / "missing.dcm", tmp_path / "out")
