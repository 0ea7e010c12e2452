"""Results back as DICOM, built with highdicom: a Secondary Capture of the film with the Grad-CAM
overlay and a burned-in "AI result - not for diagnosis", and a Comprehensive SR with the finding.

Both join the source's patient and study (highdicom copies those modules from the source dataset;
they are written to the files, never to logs or the index) in a new series each, and reference the
source instance. :func:`check` reads each file back and confirms what was promised.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import CodedConcept
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from core.errors import DicomResultError
from core.i18n import _
from core.services.dicom_store import Prediction

BURNED_IN_TEXT = "AI result - not for diagnosis"
NOT_ASSESSABLE = "NOT ASSESSABLE"
NOT_ASSESSABLE_TEXT = f"{NOT_ASSESSABLE} - {BURNED_IN_TEXT}"
MANUFACTURER = "LucidDx"
SERIES_NUMBER_SC, SERIES_NUMBER_SR = 9901, 9902
# SNOMED CT: 233604007 Pneumonia (disorder); 52101004 Present; 2667000 Absent; 373066001 Yes; 373067005 No.
PNEUMONIA = CodedConcept("233604007", "SCT", "Pneumonia")
PRESENT, ABSENT = CodedConcept("52101004", "SCT", "Present"), CodedConcept("2667000", "SCT", "Absent")
# 82334004 Indeterminate: a film unlike the training images gets no class, neither present nor absent.
INDETERMINATE = CodedConcept("82334004", "SCT", "Indeterminate")
YES, NO = CodedConcept("373066001", "SCT", "Yes"), CodedConcept("373067005", "SCT", "No")
# Our own concepts: a private coding scheme ("99" prefix, PS3.16 8.2), described in the SR's header.
PRIVATE_SCHEME = "99LUCIDDX"
PROBABILITY = CodedConcept("probability", PRIVATE_SCHEME, "Model probability of pneumonia")
THRESHOLD = CodedConcept("threshold", PRIVATE_SCHEME, "Operating threshold")
OUT_OF_DISTRIBUTION = CodedConcept("ood", PRIVATE_SCHEME, "Input unlike the training images")
REPORT_TITLE = CodedConcept("18748-4", "LN", "Diagnostic imaging report")
UNITLESS = CodedConcept("1", "UCUM", "no units")


# What a result carries of its source: what files it with its patient and study in a PACS (the Patient
# module's type 1/2 attributes, the General Study module's), what references the source instance, and
# what orients the Secondary Capture. Nothing else: no comments, history, other IDs, institution or station.
_CARRIED = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "PatientOrientation",
    "Laterality",
    "ImageLaterality",
)
# Patient and study attributes of type 2 (present, may be empty) that highdicom copies from the source.
_TYPE2_FROM_SOURCE = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


_QUOTED_VALUE = re.compile(r"(?<!attribute )(?<!Element=)(?<!Module=)<[^>]*>")


@dataclass(frozen=True)
class ResultFiles:
    secondary_capture: Path
    report: Path

    def paths(self) -> list[str]:
        return [str(self.secondary_capture), str(self.report)]


def burn_in(rgb: np.ndarray, text: str = BURNED_IN_TEXT, second_line: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> the same with ``text`` (and ``second_line`` under it) drawn on a dark band at the
    top, in the pixels; the font fits ``text``, so a second line never makes the warning smaller."""
    image = Image.fromarray(rgb, mode="RGB")
    height, width = rgb.shape[:2]
    size = max(10, min(width // max(len(text) // 2 + 2, 1), height // 12))
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    lines = [text] + ([second_line] if second_line else [])
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    pad = max(2, size // 4)
    line_height = max(bottom - top for _left, top, _right, bottom in boxes) + pad
    band_width = max(right - left for left, _top, right, _bottom in boxes) + 2 * pad
    draw.rectangle((0, 0, min(width, band_width), line_height * len(lines) + pad), fill=(0, 0, 0))
    for row, (line, (left, top, _right, _bottom)) in enumerate(zip(lines, boxes)):
        draw.text((pad - left, pad - top + row * line_height), line, fill=(255, 255, 0), font=font)
    return np.asarray(image)


def secondary_capture(source: Dataset, overlay_rgb: np.ndarray, assessable: bool = True) -> hd.sc.SCImage:
    """The film with its Grad-CAM overlay and the burned-in warning, in the source's study, a new series.

    A film that is not assessable says so in its pixels and its description: no finding is read from it."""
    warning = BURNED_IN_TEXT if assessable else NOT_ASSESSABLE_TEXT
    pixels = burn_in(
        np.ascontiguousarray(overlay_rgb, dtype=np.uint8), BURNED_IN_TEXT, None if assessable else NOT_ASSESSABLE
    )
    orientation = source.get("PatientOrientation")
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER_SC,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=tuple(orientation) if orientation and len(orientation) == 2 else ("L", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    image.BurnedInAnnotation = "YES"
    # General Series Laterality is type 2C: DICOM validators (dciodvfy) reject the object without it.
    side = str(source.get("Laterality") or source.get("ImageLaterality") or "")
    image.Laterality = side if side in ("R", "L") else ""  # series laterality allows only R or L, or empty
    image.SeriesDescription = (
        "LucidDx Grad-CAM (AI result, not for diagnosis)"
        if assessable
        else "LucidDx Grad-CAM (NOT ASSESSABLE, not for diagnosis)"
    )
    image.ImageComments = warning
    image.DerivationDescription = "Grad-CAM heatmap of the model's call blended over the source image"
    image.SourceImageSequence = [_reference(source)]
    return image


def source_header(source: Dataset) -> Dataset:
    """A new dataset with only what the results carry of the source (``_CARRIED``), and the type-2
    patient/study attributes present (empty where the sender left them out), as highdicom's constructors
    read them. highdicom copies whole modules (Patient, Patient Study, clinical trial...) and the source's
    acquisition equipment from what it is given: giving it this header is what keeps patient comments,
    history, other IDs and the institution out of the SC and SR. The source itself is left as it was."""
    header = Dataset({tag: source[tag] for tag in map(Tag, _CARRIED) if tag in source})
    for keyword in _TYPE2_FROM_SOURCE:
        if keyword not in header:
            setattr(header, keyword, "")
    return header


def _reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def _finding_items(prediction: Prediction) -> list:
    positive = prediction.positive_class or prediction.decision
    if prediction.assessable:
        value = PRESENT if prediction.label == positive else ABSENT
    else:
        value = INDETERMINATE  # not assessable: no class, whatever the probability
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    items = [
        hd.sr.CodeContentItem(PNEUMONIA, value, relationship_type=contains),
        hd.sr.NumContentItem(
            PROBABILITY, float(prediction.probabilities.get(positive, 0.0)), UNITLESS, relationship_type=contains
        ),
    ]
    if prediction.threshold is not None:
        items.append(hd.sr.NumContentItem(THRESHOLD, float(prediction.threshold), UNITLESS, relationship_type=contains))
    name, _sep, version = prediction.model.partition(":")
    items += [
        hd.sr.TextContentItem(codes.DCM.AlgorithmName, name, relationship_type=contains),
        hd.sr.TextContentItem(codes.DCM.AlgorithmVersion, version or "unknown", relationship_type=contains),
        hd.sr.CodeContentItem(
            OUT_OF_DISTRIBUTION, YES if prediction.out_of_distribution else NO, relationship_type=contains
        ),
    ]
    return items


def structured_report(source: Dataset, prediction: Prediction) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR: pneumonia present/absent (SNOMED CT), probability, threshold, model, OOD."""
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    evidence = hd.sr.ImageContentItem(
        codes.DCM.SourceOfMeasurement, source.SOPClassUID, source.SOPInstanceUID, relationship_type=contains
    )
    disclaimer = hd.sr.TextContentItem(
        codes.DCM.Comment, BURNED_IN_TEXT if prediction.assessable else NOT_ASSESSABLE_TEXT, relationship_type=contains
    )
    root = hd.sr.ContainerContentItem(REPORT_TITLE, template_id=None)
    root.ContentSequence = hd.sr.ContentSequence([*_finding_items(prediction), evidence, disclaimer])
    report = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER_SR,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description="LucidDx AI result (not for diagnosis)",
    )
    scheme = Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = "LucidDx local codes"
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    report.CodingSchemeIdentificationSequence = [scheme]
    return report


def write_results(source: Dataset, overlay_rgb: np.ndarray, prediction: Prediction, folder: Path) -> ResultFiles:
    """Build, write (atomically, by rename) and check both objects under ``folder``."""
    from core.services.dicom_store import write_atomically

    folder.mkdir(parents=True, exist_ok=True)
    files = ResultFiles(folder / "secondary_capture.dcm", folder / "report_sr.dcm")
    header = source_header(source)
    with warnings.catch_warnings():
        # highdicom warns about odd person names by quoting them: a patient's name must not reach a log.
        warnings.simplefilter("ignore", UserWarning)
        built = (
            (secondary_capture(header, overlay_rgb, prediction.assessable), files.secondary_capture),
            (structured_report(header, prediction), files.report),
        )
    for dataset, path in built:
        buffer = pydicom.filebase.DicomBytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        write_atomically(path, buffer.getvalue())
    check(files, source)
    return files


def check(files: ResultFiles, source: Dataset) -> None:
    """Read both files back: SOP classes, the study and the referenced source, the burned-in flag,
    the SR's finding; then ``dciodvfy`` when it is installed. Raises DicomResultError on a mismatch."""
    sc = pydicom.dcmread(files.secondary_capture)
    sr = pydicom.dcmread(files.report)
    problems = []
    if sc.SOPClassUID != pydicom.uid.SecondaryCaptureImageStorage or sc.BurnedInAnnotation != "YES":
        problems.append(_("the Secondary Capture's class or burned-in flag"))
    if sc.SourceImageSequence[0].ReferencedSOPInstanceUID != source.SOPInstanceUID:
        problems.append(_("the Secondary Capture's source reference"))
    if sr.SOPClassUID != pydicom.uid.Comprehensive3DSRStorage:
        problems.append(_("the report's SOP class"))
    if source.SOPInstanceUID not in referenced_instances(sr):
        problems.append(_("the report's evidence reference"))
    if not any(item.ConceptNameCodeSequence[0].CodeValue == PNEUMONIA.value for item in sr.ContentSequence):
        problems.append(_("the report's finding"))
    if any(ds.StudyInstanceUID != source.StudyInstanceUID for ds in (sc, sr)):
        problems.append(_("the study instance UID"))
    problems += [
        _("dciodvfy on {file}: {error}").format(file=path.name, error=error)
        for path in (files.secondary_capture, files.report)
        for error in dciodvfy_errors(path)
    ]
    if problems:
        raise DicomResultError(
            _("The result objects failed their check: {problems}.").format(problems="; ".join(problems))
        )


def referenced_instances(report: Dataset) -> set[str]:
    """Every SOP Instance UID the SR references (evidence sequence and IMAGE content items)."""
    found = set()
    for study in report.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.ReferencedSeriesSequence:
            found.update(item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence)
    for item in report.get("ContentSequence", []):
        found.update(ref.ReferencedSOPInstanceUID for ref in item.get("ReferencedSOPSequence", []))
    return found


def dciodvfy_errors(path: Path) -> list[str]:
    """dicom3tools' validator's "Error" lines for ``path``; [] when it passes or is not installed."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        return []
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    # dciodvfy quotes offending values ("Patient's Name PN [1] = <...>"): the attribute is kept, its value
    # never, since these lines become the worklist's reason and the node's log.
    return [
        _QUOTED_VALUE.sub("<value>", line.strip())
        for line in (run.stdout + run.stderr).splitlines()
        if line.startswith("Error")
    ][:5]
