"""The node's parts without a network: sender names, UIDs as file names, the screen, the results'
check, PACS forwarding (to a throwaway pynetdicom SCP), the worklist's words, the CLI."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pynetdicom import AE, AllStoragePresentationContexts, evt

from core.cli import main
from core.dicomnode import admission, pacs, results
from core.imaging import dicom_index as index
from core.services import worklist
from core.errors import DicomNodeError, DicomResultError
from core.imaging.classifier import Prediction
from core.i18n import using
from tests.dicomnode.conftest import chest_dx
from tests.support.dashboard import free_port

PREDICTION = Prediction("chest_xray:1", "PNEUMONIA", {"NORMAL": 0.1, "PNEUMONIA": 0.9}, 0.155, "PNEUMONIA", True, 3.2)


@pytest.mark.parametrize("title, word", [("MY_PC", "MY_PC"), (" ORTHANC  ", "ORTHANC"), ("CT 1\\x", "CT_1_x"),
                                         ("", "unknown-ae"), (b"PACS", "PACS"), ("***", "unknown-ae")])
def test_sender_names_are_audit_words(title, word) -> None:
    assert admission.sender_name(title) == word


@pytest.mark.parametrize("uid, ok", [("1.2.3", True), ("1.2.840.10008.5.1.4.1.1.7", True), ("../x", False),
                                     ("1.2.3/..", False), ("", False), ("1." * 40 + "1", False), (None, False)])
def test_only_uids_name_files(uid, ok) -> None:
    assert index.is_uid(uid) is ok
    if not ok:
        with pytest.raises(ValueError):
            index.incoming_path(uid)


def test_screen_says_why(tmp_path: Path) -> None:
    dx = chest_dx(tmp_path / "a.dcm")
    uid = dx.SOPInstanceUID
    assert admission.screen(dx.SOPClassUID, uid, dx) is None
    assert "header" in admission.screen(dx.SOPClassUID, uid, None)
    assert "match" in admission.screen(dx.SOPClassUID, "1.2.3", dx)
    assert "CT Image Storage" in admission.screen("1.2.840.10008.5.1.4.1.1.2", uid, dx)
    dx.BodyPartExamined = "HAND"
    refused = admission.screen(dx.SOPClassUID, uid, dx)
    assert "Body Part Examined" in refused and "HAND" not in refused  # the attribute, never its value
    assert "1.2.840.10008.1.2.4.50" in admission.decodable_transfer_syntaxes()  # JPEG baseline


def test_results_are_checked_when_read_back(tmp_path: Path) -> None:
    source = chest_dx(tmp_path / "a.dcm")
    del source.PatientBirthDate  # highdicom needs the type-2 attributes: we fill them in empty
    files = results.write_results(source, np.full((source.Rows, source.Columns, 3), 90, np.uint8), PREDICTION,
                                  tmp_path / "out")
    assert "PatientBirthDate" not in source and "PixelData" in source  # the source is left as it was
    sr = pydicom.dcmread(files.report)
    codes = {item.ConceptNameCodeSequence[0].CodeValue: item for item in sr.ContentSequence}
    assert codes["ood"].ConceptCodeSequence[0].CodeValue == results.YES.value
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == results.PRIVATE_SCHEME
    sc = pydicom.dcmread(files.secondary_capture)
    top = sc.pixel_array[: source.Rows // 12, : source.Columns // 2]
    assert (top == [255, 255, 0]).all(axis=-1).any(), "the warning is burned into the pixels"
    other = chest_dx(tmp_path / "b.dcm")
    with pytest.raises(DicomResultError, match="source reference"):
        results.check(files, other)


def test_results_carry_only_what_files_them_with_their_study(tmp_path: Path) -> None:
    """The SC and SR carry the patient's name, ID, birth date and sex and the study's attributes, nothing else
    of the source: planted comments, history, other IDs, institution and private values stay behind."""
    source = chest_dx(tmp_path / "a.dcm")
    planted = {"PatientComments": "PLANTED-COMMENT", "AdditionalPatientHistory": "PLANTED-HISTORY",
               "InstitutionName": "PLANTED-INSTITUTION", "StationName": "PLANTED-STATION",
               "OperatorsName": "PLANTED^OPERATOR", "PatientAddress": "PLANTED-ADDRESS", "EthnicGroup": "PLANTED-EG",
               "StudyDescription": "PLANTED-STUDY-DESCRIPTION", "RequestingPhysician": "PLANTED^REQUESTER",
               "ClinicalTrialSponsorName": "PLANTED-SPONSOR", "PatientTelephoneNumbers": "PLANTED-PHONE"}
    for keyword, value in planted.items():
        setattr(source, keyword, value)
    other = pydicom.Dataset()
    other.PatientID, other.IssuerOfPatientID = "PLANTED-OTHER-ID", "PLANTED-ISSUER"
    source.OtherPatientIDsSequence = [other]
    source.private_block(0x0011, "ACME 1.0", create=True).add_new(0x01, "LO", "PLANTED-PRIVATE")
    files = results.write_results(source, np.zeros((source.Rows, source.Columns, 3), np.uint8), PREDICTION,
                                  tmp_path / "out")
    for path in (files.secondary_capture, files.report):
        written = path.read_bytes()
        assert b"PLANTED" not in written, path.name
        result = pydicom.dcmread(path)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                        "StudyDate", "StudyTime", "AccessionNumber", "StudyID"):
            assert result[keyword].value == source[keyword].value, (path.name, keyword)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
def test_a_validator_error_names_the_attribute_never_its_value(tmp_path: Path) -> None:
    source = chest_dx(tmp_path / "a.dcm")
    source.PatientName = "ZEBRAFISH^WALTER^X^Y^Z^Q^R"  # too many components: dciodvfy quotes it in its error
    with pytest.raises(DicomResultError) as raised:
        results.write_results(source, np.zeros((source.Rows, source.Columns, 3), np.uint8), PREDICTION,
                              tmp_path / "out")
    assert "Patient's Name" in str(raised.value)
    assert "ZEBRAFISH" not in str(raised.value) and "WALTER" not in str(raised.value)


def test_dciodvfy_is_used_when_installed(tmp_path: Path) -> None:
    import shutil

    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools' dciodvfy is not installed: results are checked by reading them back only")
    source = chest_dx(tmp_path / "a.dcm")
    files = results.write_results(source, np.zeros((source.Rows, source.Columns, 3), np.uint8), PREDICTION,
                                  tmp_path / "out")
    assert results.dciodvfy_errors(files.report) == [] and results.dciodvfy_errors(files.secondary_capture) == []


@pytest.mark.parametrize("target", ["PACS", "PACS@host", "PACS@host:0", "A" * 17 + "@h:104", "P@h:99999"])
def test_a_malformed_pacs_target_names_the_form(target) -> None:
    with pytest.raises(DicomNodeError, match="AET@host:port"):
        pacs.parse(target)


def test_results_are_sent_to_the_configured_pacs(tmp_path: Path) -> None:
    received: list[str] = []

    def store(event):
        received.append(event.dataset.SOPClassUID)
        return 0x0000

    ae = AE(ae_title="PACS")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
    try:
        source = chest_dx(tmp_path / "a.dcm")
        files = results.write_results(source, np.zeros((source.Rows, source.Columns, 3), np.uint8), PREDICTION,
                                      tmp_path / "out")
        assert pacs.send([files.secondary_capture, files.report], f"PACS@127.0.0.1:{port}") is None
        assert received == [pydicom.uid.SecondaryCaptureImageStorage, pydicom.uid.Comprehensive3DSRStorage]
        assert "did not accept" in pacs.send([files.report], f"PACS@127.0.0.1:{free_port()}")
    finally:
        server.shutdown()


def test_the_worklist_speaks_the_readers_language(isolated_home: Path, capsys) -> None:
    assert main(["worklist", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    index.put(index.Entry("1.2.3", index.now_text(), "CT", status="refused", reason="Not a chest radiograph"))
    index.put(index.Entry("1.2.4", index.now_text(), "DX", status="done", label="PNEUMONIA",
                          probabilities={"NORMAL": 0.2, "PNEUMONIA": 0.8}, out_of_distribution=True,
                          results=["a", "b"]))
    rows = worklist.entries()
    assert [row["sop_instance_uid"] for row in rows] == ["1.2.4", "1.2.3"]
    assert [row["status"] for row in worklist.entries(status="refused")] == ["refused"]
    # indexed with a label before not-assessable meant no label: it carries none now, in every view
    assert rows[0]["label"] is None and rows[0]["probabilities"]["PNEUMONIA"] == 0.8
    assert "PNEUMONIA" not in worklist.describe(rows[0]) and "Not assessable" in worklist.describe(rows[0])
    assert "reason: Not a chest radiograph" in worklist.describe(rows[1])
    with using("zh_CN"):
        assert isinstance(worklist.summary(rows), str)
    assert main(["worklist", "--status", "done", "--json"]) == 0
    assert [row["sop_instance_uid"] for row in json.loads(capsys.readouterr().out)] == ["1.2.4"]


def test_the_index_is_safe_from_threads(isolated_home: Path) -> None:
    def add(n: int) -> None:
        for i in range(20):
            index.put(index.Entry(f"1.{n}.{i}", index.now_text(), "DX"))
            index.update(f"1.{n}.{i}", status="done", results=["x"])

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(worklist.entries(status="done")) == 80


def test_a_node_with_a_bad_ae_title_or_busy_port_says_so(isolated_home: Path) -> None:
    from core.dicomnode.scp import DicomNode

    with pytest.raises(DicomNodeError, match="AE title"):
        DicomNode(aet="A" * 17)
    first = DicomNode("127.0.0.1", free_port(), home=isolated_home).start()
    try:
        with pytest.raises(DicomNodeError, match="cannot listen"):
            DicomNode("127.0.0.1", first.port, home=isolated_home).start()
    finally:
        first.stop()
