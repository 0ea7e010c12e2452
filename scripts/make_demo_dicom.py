"""Write assets/samples/pneumonia_demo.dcm: a sample JPEG wrapped as an anonymous Secondary Capture DICOM.

Reproducible: same input -> byte-identical output (UIDs are derived from fixed text, no dates, no
random values). Run from the repository root:  python scripts/make_demo_dicom.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SOURCE = SAMPLES / "pneumonia_bacteria_1.jpeg"
TARGET = SAMPLES / "pneumonia_demo.dcm"


def demo_uid(label: str) -> str:
    """A valid DICOM UID that is the same on every run (derived from ``label``)."""
    return generate_uid(entropy_srcs=["luciddx-demo", label])


def build_dataset(jpeg: Path) -> Dataset:
    """(H, W) 8-bit grey pixels of ``jpeg`` in a MONOCHROME2 Secondary Capture dataset, no identity."""
    pixels = np.asarray(Image.open(jpeg).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = demo_uid("instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = demo_uid("study")
    ds.SeriesInstanceUID = demo_uid("series")
    ds.PatientName = "ANONYMOUS"
    ds.PatientID = "DEMO"
    ds.PatientIdentityRemoved = "YES"
    ds.Modality = "CR"
    ds.ConversionType = "WSD"  # workstation: digitised from an existing image
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "AP"
    ds.SeriesDescription = "LucidDx demo (Kermany et al. 2018, CC BY 4.0)"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    ds.PixelData = pixels.tobytes()
    return ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    build_dataset(args.source).save_as(args.out, enforce_file_format=True)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
