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


# --- Planted values at every depth (issue 22 items 11 and 12) -------------------------------------------

PLANTED_UID = "1.2.826.0.1.3680043.8.498.424242424242"


def _item(**values) -> pydicom.Dataset:
    item = pydicom.Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _planted_copy(folder: Path) -> tuple[Path, list[str]]:
    """CT_small.dcm with identifying values planted at the top, in sequence items 1, 2 and 3 deep, in
    sequences the profile keeps, replaces (D) or references (X/Z/U*), and in overlay and curve groups."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    planted = [f"PLANT{n:02d}" for n in range(1, 19)]
    ds.PatientName, ds.OperatorsName = f"{planted[0]}^JANE", f"{planted[1]}^OP"
    deepest = _item(CodeValue="1", CodingSchemeDesignator="DCM", CodeMeaning="x",
                    PatientName=f"{planted[2]}^DEEP", InstitutionName=planted[3], StudyDate="19811111",
                    ReferencedSOPInstanceUID=PLANTED_UID)
    deepest.private_block(0x0011, "ACME 1.0", create=True).add_new(0x01, "LO", planted[4])
    purpose = _item(CodeValue="109101", CodingSchemeDesignator="DCM", CodeMeaning="Acquisition Equipment")
    purpose.EquivalentCodeSequence = [deepest]
    equipment = _item(Manufacturer="ACME", InstitutionName=planted[5], StationName=planted[6],
                      OperatorsName=f"{planted[7]}^OP", InstitutionAddress=planted[8])
    equipment.PurposeOfReferenceCodeSequence = [purpose]
    equipment.ProcedureCodeSequence = [_item(CodeValue="P1", CodingSchemeDesignator="99X", CodeMeaning=planted[9])]
    ds.ContributingEquipmentSequence = [equipment]
    ds.ProcedureCodeSequence = [_item(CodeValue="P2", CodingSchemeDesignator="99X", CodeMeaning=planted[10])]
    ds.SourceImageSequence = [_item(ReferencedSOPClassUID=ds.SOPClassUID, ReferencedSOPInstanceUID=PLANTED_UID,
                                    PatientName=f"{planted[11]}^SRC")]
    ds.VerifyingObserverSequence = [_item(VerifyingObserverName=f"{planted[12]}^V", VerificationDateTime="19811111120000",
                                          VerifyingOrganization=planted[13])]
    for group, text in ((0x6000, planted[14]), (0x6002, planted[15])):
        ds.add_new((group, 0x0010), "US", 4)  # Overlay Rows
        ds.add_new((group, 0x0011), "US", 4)  # Overlay Columns
        ds.add_new((group, 0x0040), "CS", "G")  # Overlay Type
        ds.add_new((group, 0x0050), "SS", [1, 1])  # Overlay Origin
        ds.add_new((group, 0x0100), "US", 1)  # Overlay Bits Allocated
        ds.add_new((group, 0x0102), "US", 0)  # Overlay Bit Position
        ds.add_new((group, 0x0022), "LO", f"{text}-DESCRIPTION")
        ds.add_new((group, 0x0045), "LO", f"{text}-SUBTYPE")
        ds.add_new((group, 0x1500), "LO", f"{text}-LABEL")
        ds.add_new((group, 0x4000), "LT", f"{text}-COMMENTS")
        ds.add_new((group, 0x3000), "OW", bytes(2))  # Overlay Data
    ds.add_new((0x5000, 0x2500), "LO", planted[16])  # Curve Label (retired curve groups)
    ds.ImageComments = planted[17]
    path = folder / "planted.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path, planted + ["19811111", PLANTED_UID]


def test_no_planted_value_survives_at_any_depth(tmp_path: Path) -> None:
    source, planted = _planted_copy(tmp_path)
    assert all(value.encode() in source.read_bytes() for value in planted)  # the builder planted them all
    result = deidentify_file(source, tmp_path / "out")
    written = Path(result.out).read_bytes()
    assert [value for value in planted if value.encode() in written] == []
    out = pydicom.dcmread(result.out)
    assert not [e for e in out.iterall() if e.tag.is_private or e.tag.group in range(0x5000, 0x6100)]
    # Kept sequences keep their structure; references point at consistently replaced UIDs.
    equipment = out.ContributingEquipmentSequence[0]
    assert equipment.Manufacturer == "ACME" and "ProcedureCodeSequence" not in equipment
    deepest = equipment.PurposeOfReferenceCodeSequence[0].EquivalentCodeSequence[0]
    assert deepest.CodeValue == "1" and str(deepest.get("PatientName", "")) in ("", "ANONYMIZED")
    assert deepest.ReferencedSOPInstanceUID == out.SourceImageSequence[0].ReferencedSOPInstanceUID != PLANTED_UID
    assert "ProcedureCodeSequence" not in out and out.PatientIdentityRemoved == "YES"


def _garbage(kind: str, folder: Path) -> Path:
    """A file that must be refused: random bytes after a DICOM preamble, a truncated file, a header only."""
    import random

    good = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    rng = random.Random(22)
    content = {
        "random-after-preamble": bytes(128) + b"DICM" + bytes(rng.randrange(256) for _ in range(4000)),
        "truncated-pixels": good[: len(good) // 2],
        "truncated-header": good[:1000],
        "meta-only": good[:400],
    }[kind]
    path = folder / f"{kind}.dcm"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind", ["random-after-preamble", "truncated-pixels", "truncated-header", "meta-only"])
def test_a_broken_file_fails_alone_and_the_good_one_is_written(kind: str, tmp_path: Path, capsys) -> None:
    import json

    from core.cli import main

    broken = _garbage(kind, tmp_path)
    good, _ = _identified_copy("MR_small.dcm", tmp_path)
    assert main(["deidentify", str(broken), str(good), "--out", str(tmp_path / "out"), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [(r["file"], r["ok"]) for r in rows] == [(str(broken), False), (str(good), True)]
    assert broken.name in rows[0]["error"] and rows[0]["out"] is None
    assert "not a readable DICOM file" in rows[0]["error"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [Path(rows[1]["out"]).name]
    assert pydicom.dcmread(rows[1]["out"]).PatientIdentityRemoved == "YES"


def test_an_unwritable_output_fails_that_file_with_its_reason(tmp_path: Path) -> None:
    source, _ = _identified_copy("CT_small.dcm", tmp_path)
    (tmp_path / "blocker").write_text("a file where the output folder should be")
    with pytest.raises(UnsupportedImageError, match="could not be written"):
        deidentify_file(source, tmp_path / "blocker" / "out")
