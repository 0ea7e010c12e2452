"""The DICOM node in-process on a free localhost port, in each test's own LUCIDDX_HOME; chest films
made into DX DICOM from the bundled samples; helpers that wait for the worker."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.imaging import dicom_index as index
from core.services.imaging import SAMPLES_DIR
from tests.support.dashboard import free_port

PATIENT_NAME = "TEST^PATIENT"
PATIENT_ID = "PID-TEST-0042"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
FINAL = {"done", "failed", "refused"}

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK (storescu, echoscu) not installed")



@pytest.fixture
def node(isolated_home: Path):
    from core.dicomnode.scp import DicomNode

    started = DicomNode("127.0.0.1", free_port(), "LUCIDDX", home=isolated_home).start()
    assert started.worker.ready.wait(120), "the model did not load"
    yield started
    started.stop()


def chest_dx(path: Path, sample: str = "pneumonia_bacteria_1.jpeg", body_part: str | None = "CHEST",
             pixels: bool = True) -> Dataset:
    """A DX For Presentation file of a bundled chest film, with planted patient fields."""
    grey = np.asarray(Image.open(SAMPLES_DIR / sample).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_FOR_PRESENTATION, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_NAME, PATIENT_ID, "20200101", "F"
    ds.Modality, ds.PresentationIntentType, ds.ImageType = "DX", "FOR PRESENTATION", ["ORIGINAL", "PRIMARY"]
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20261129", "120000", "ACC42", "1"
    ds.ReferringPhysicianName, ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "", "test", 1, 1
    ds.PatientOrientation = ["L", "F"]
    if body_part:
        ds.BodyPartExamined = body_part
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if pixels:
        ds.PixelData = grey.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


def storescu(port: int, *files: Path, aet: str = "MY_PC", options: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(["storescu", *options, "-aet", aet, "-aec", "LUCIDDX", "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=60)


def echoscu(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(["echoscu", "-aec", "LUCIDDX", "127.0.0.1", str(port)], capture_output=True, text=True,
                          timeout=30)


def wait_for(home: Path, uid: str, timeout: float = 60.0) -> index.Entry:
    """The index row of ``uid`` once it is done, failed or refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = index.get(uid, home)
        if entry is not None and entry.status in FINAL:
            return entry
        time.sleep(0.1)
    raise AssertionError(f"instance {uid} did not finish in {timeout} s: {index.get(uid, home)}")


def read(path: str | Path) -> Dataset:
    return pydicom.dcmread(path)
