"""The DICOM node end to end: DCMTK's echoscu and storescu against the node in-process, real model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import SecondaryCaptureImageStorage, Comprehensive3DSRStorage
from pynetdicom import AE

from core.access import audit
from core.cli import main
from core.dicomnode import results
from core.imaging import dicom_index as index
from core.services import worklist
from core.dicomnode.worker import classifier
from core.models import registry
from tests.dicomnode.conftest import (PATIENT_ID, PATIENT_NAME, chest_dx, echoscu, read, storescu, wait_for)


def test_echoscu_is_answered(node) -> None:
    run = echoscu(node.port)
    assert run.returncode == 0, run.stderr


def test_a_chest_dx_comes_back_scored_with_sc_and_sr(node, isolated_home: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    source = chest_dx(tmp_path / "film.dcm")
    run = storescu(node.port, tmp_path / "film.dcm")
    assert run.returncode == 0, run.stderr
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "done", entry.reason
    assert entry.label in ("NORMAL", "PNEUMONIA") and entry.modality == "DX" and entry.calling_aet == "MY_PC"
    assert abs(sum(entry.probabilities.values()) - 1) < 1e-3 and entry.out_of_distribution is False
    assert entry.model == registry.resolve("chest_xray").spec and len(entry.results) == 2
    assert index.incoming_path(source.SOPInstanceUID, isolated_home).is_file()

    sc = read(next(p for p in entry.results if p.endswith("secondary_capture.dcm")))
    sr = read(next(p for p in entry.results if p.endswith("report_sr.dcm")))
    assert sc.SOPClassUID == SecondaryCaptureImageStorage and sc.BurnedInAnnotation == "YES"
    assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.SeriesInstanceUID != source.SeriesInstanceUID
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.pixel_array.shape == (source.Rows, source.Columns, 3)
    assert str(sc.PatientName) == PATIENT_NAME  # same patient as the source: inside the DICOM only
    assert sr.SOPClassUID == Comprehensive3DSRStorage and sr.StudyInstanceUID == source.StudyInstanceUID
    assert source.SOPInstanceUID in results.referenced_instances(sr)
    items = {item.ConceptNameCodeSequence[0].CodeValue: item for item in sr.ContentSequence}
    finding = items[results.PNEUMONIA.value].ConceptCodeSequence[0].CodeValue
    assert finding == (results.PRESENT.value if entry.label == "PNEUMONIA" else results.ABSENT.value)
    probability = float(items["probability"].MeasuredValueSequence[0].NumericValue)
    assert probability == pytest.approx(entry.probabilities["PNEUMONIA"], abs=1e-3)
    assert float(items["threshold"].MeasuredValueSequence[0].NumericValue) == pytest.approx(classifier(None).threshold)
    assert items["111003"].TextValue == registry.resolve("chest_xray").version and items["111001"].TextValue == "chest_xray"

    trail = audit.records(action="predict")
    assert [(r.user, r.role, r.model, r.outcome) for r in trail] == [("MY_PC", "dicom-node", entry.model, "ok")]
    assert len(trail[0].input_sha256) == 64

    assert main(["worklist", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(worklist.CONTRACT_FIELDS) <= set(listed[0]) and listed[0]["status"] == "done"
    assert main(["worklist"]) == 0
    human = capsys.readouterr().out
    for secret in (PATIENT_NAME, "PATIENT", PATIENT_ID):
        assert secret not in json.dumps(listed) and secret not in human and secret not in caplog.text
        assert not [p for p in isolated_home.rglob("*") if secret in p.name]


def test_a_compressed_chest_film_is_decoded(node, isolated_home: Path, tmp_path: Path) -> None:
    import subprocess

    source = chest_dx(tmp_path / "film.dcm", sample="normal_1.jpeg")
    subprocess.run(["dcmcjpeg", "+e1", str(tmp_path / "film.dcm"), str(tmp_path / "lossless.dcm")], check=True)
    assert pydicom.dcmread(tmp_path / "lossless.dcm").file_meta.TransferSyntaxUID.is_compressed
    assert storescu(node.port, tmp_path / "lossless.dcm", options=["-xs"]).returncode == 0  # JPEG lossless SV1
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "done", entry.reason


def test_a_ct_is_flagged_not_a_chest_radiograph(node, isolated_home: Path) -> None:
    ct = Path(get_testdata_file("CT_small.dcm"))
    storescu(node.port, ct)  # refused: the sender is told, and the worklist says why
    entry = wait_for(isolated_home, pydicom.dcmread(ct).SOPInstanceUID)
    assert entry.status == "refused" and "chest" in entry.reason.lower() and "CT" in entry.reason
    assert [r.outcome for r in audit.records(action="predict")] == ["bad-input"]


def test_a_dx_of_another_body_part_is_refused(node, isolated_home: Path, tmp_path: Path) -> None:
    source = chest_dx(tmp_path / "knee.dcm", body_part="KNEE")
    assert storescu(node.port, tmp_path / "knee.dcm").returncode != 0  # the sender is told
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "refused" and "Body Part Examined" in entry.reason and "KNEE" not in entry.reason


def _scu_send(port: int, dataset_or_path) -> int:
    ae = AE(ae_title="BROKEN SCU")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1.1", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    assoc = ae.associate("127.0.0.1", port, ae_title="LUCIDDX")
    assert assoc.is_established
    status = assoc.send_c_store(dataset_or_path)
    assoc.release()
    return int(getattr(status, "Status", -1))


def test_a_dataset_without_pixels_fails_with_a_reason_and_the_node_goes_on(node, isolated_home: Path,
                                                                           tmp_path: Path) -> None:
    source = chest_dx(tmp_path / "empty.dcm", pixels=False)
    assert _scu_send(node.port, pydicom.dcmread(tmp_path / "empty.dcm")) == 0x0000
    entry = wait_for(isolated_home, source.SOPInstanceUID)
    assert entry.status == "failed" and entry.reason and "image data" in entry.reason
    assert PATIENT_NAME not in entry.reason
    assert [(r.user, r.outcome) for r in audit.records(action="predict")] == [("BROKEN_SCU", "bad-input")]
    assert echoscu(node.port).returncode == 0


class _Event:
    """What the C-STORE handler reads of pynetdicom's event: the request, the sender, the bytes."""

    def __init__(self, uid: str, sop_class: str, data: bytes | Exception) -> None:
        self.request = SimpleNamespace(AffectedSOPInstanceUID=uid, AffectedSOPClassUID=sop_class)
        self.assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title="GARBLER"))
        self._data = data

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        if isinstance(self._data, Exception):
            raise self._data
        return self._data


def test_a_garbled_header_is_refused_with_a_reason(node, isolated_home: Path, tmp_path: Path) -> None:
    source = chest_dx(tmp_path / "film.dcm")
    raw = (tmp_path / "film.dcm").read_bytes()
    rows = b"\x28\x00\x10\x00US\x02\x00" + raw.split(b"\x28\x00\x10\x00US\x02\x00")[1][:2]
    garbled = raw.replace(rows, b"\x28\x00\x10\x00US\x03\x00\x01\x01\x01")  # Rows in 3 bytes: undecodable
    status = node.on_store(_Event(source.SOPInstanceUID, source.SOPClassUID, garbled))
    assert status.Status == 0xC000 and "header" in status.ErrorComment
    entry = index.get(source.SOPInstanceUID, isolated_home)
    assert entry.status == "refused" and "header" in entry.reason
    assert not index.incoming_path(source.SOPInstanceUID, isolated_home).exists()
    broken = node.on_store(_Event(source.SOPInstanceUID, source.SOPClassUID, RuntimeError("decoder bug")))
    assert broken.Status == 0x0110  # our own failure is a status for the sender, not a crash
    bad_uid = node.on_store(_Event("../../etc/passwd", source.SOPClassUID, raw))
    assert bad_uid.Status == 0xC000 and not list(isolated_home.rglob("passwd*"))


def test_an_aborted_association_leaves_the_node_running(node) -> None:
    ae = AE(ae_title="ABORTER")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", node.port, ae_title="LUCIDDX")
    assert assoc.is_established
    assoc.abort()
    assert echoscu(node.port).returncode == 0


def test_a_jpeg_baseline_secondary_capture_that_is_no_chest_film_is_flagged(node, isolated_home: Path) -> None:
    photo = Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))  # a colour test pattern, JPEG baseline
    assert storescu(node.port, photo, options=["-xy"]).returncode == 0
    entry = wait_for(isolated_home, pydicom.dcmread(photo).SOPInstanceUID)
    assert entry.status == "done" and entry.out_of_distribution is True
    assert "unlike the chest films" in entry.reason and len(entry.results) == 2
    sr = read(next(p for p in entry.results if p.endswith("report_sr.dcm")))
    ood = next(item for item in sr.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "ood")
    assert ood.ConceptCodeSequence[0].CodeValue == results.YES.value
