"""What the node accepts: chest radiographs (CR, DX, Secondary Capture) it can decode.

The receiving thread asks :func:`screen` about each instance before anything is written: a reason
(in words a PACS administrator can act on) means the instance is refused, None that it is queued.
Reasons never quote header values that could identify a patient.
"""

from __future__ import annotations

import io
import re
import warnings

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, AllTransferSyntaxes

from core.i18n import _
from core.services import dicom_store

# The storage SOP classes of chest radiographs the model can read.
CHEST_SOP_CLASSES = {
    UID("1.2.840.10008.5.1.4.1.1.1"): "CR",  # Computed Radiography Image Storage
    UID("1.2.840.10008.5.1.4.1.1.1.1"): "DX",  # Digital X-Ray Image Storage - For Presentation
    UID("1.2.840.10008.5.1.4.1.1.1.1.1"): "DX",  # Digital X-Ray Image Storage - For Processing
    UID("1.2.840.10008.5.1.4.1.1.7"): "OT",  # Secondary Capture Image Storage
}
CHEST_BODY_PARTS = {"CHEST", "THORAX", "LUNG"}
MAX_INSTANCE_BYTES = 128 * 1024**2
"""Largest instance the node stores, as received (a 4,300 x 3,500 16-bit DX film is about 30 MB)."""
MAX_INSTANCE_PIXEL_BYTES = 64 * 1024**2
"""Largest pixel data an instance's header may describe (Rows x Columns x frames x samples x bytes per
sample). Decoding, windowing and the model take several times this in memory, so a 98 MB film would
take the node from under 1 GB to several; refused from the header, before anything is decoded."""
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID")
# Modality defined terms (PS3.3 C.7.3.1.1.1): a header's Modality is recorded only when it is one of them,
# so free text typed into it (a name, say) never reaches the index, the log or the worklist.
MODALITIES = frozenset(
    """
ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO IOL IVOCT
IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF
RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US
VA XA XAPROTOCOL XC
""".split()
)
_WORD = re.compile(r"[^A-Za-z0-9._:@+-]+")


def decodable_transfer_syntaxes() -> list[str]:
    """Every transfer syntax the image door can decode here (pydicom plus the installed pylibjpeg plugins)."""
    from pydicom.pixels import get_decoder

    found = []
    for syntax in AllTransferSyntaxes:
        try:
            if get_decoder(syntax).is_available:
                found.append(str(syntax))
        except (NotImplementedError, ValueError):
            continue
    return found


def sender_name(ae_title: object) -> str:
    """The calling AE title as one audit word: spaces and other characters become "_"; never empty."""
    text = ae_title.decode("ascii", "replace") if isinstance(ae_title, bytes) else str(ae_title or "")
    word = _WORD.sub("_", text.strip()).strip("_.:@+-")[:64]
    return word if word else "unknown-ae"


def read_header(data: bytes) -> Dataset:
    """The header of a received instance (no pixels), every value decoded; raises on anything pydicom
    cannot parse. pydicom's warnings (which can quote values) are not let out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        for element in header.iterall():  # pydicom decodes lazily: make a damaged value fail here
            element.value  # noqa: B018
    return header


def screen(sop_class: str, sop_instance: str, header: Dataset | None) -> str | None:
    """Why the instance must be refused, or None to score it."""
    if header is None:
        return _("The DICOM header could not be read (damaged or incomplete); send the instance again.")
    if UID(sop_class) not in CHEST_SOP_CLASSES:
        name = UID(sop_class).name if UID(sop_class).is_valid else _("an unknown class")
        return _(
            "Not a chest radiograph: {sop_class} is not read by this model; LucidDx reads CR, DX and "
            "Secondary Capture chest films."
        ).format(sop_class=name)
    if header.get("SOPClassUID") != sop_class or header.get("SOPInstanceUID") != sop_instance:
        return _(
            "The DICOM header is damaged: its SOP Class or Instance UID does not match the request; "
            "send the instance again."
        )
    body_part = str(header.get("BodyPartExamined", "") or "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        # The attribute is named, never its value: free text typed into it can identify the patient.
        return _(
            "Not a chest radiograph: its Body Part Examined is not CHEST, THORAX or LUNG; the model reads "
            "chest films only."
        )
    return missing_uid(header)


def missing_uid(header: Dataset) -> str | None:
    """The reason to refuse an instance without the UIDs its results are filed under, naming the attribute."""
    for keyword in REQUIRED_UIDS:
        if not str(header.get(keyword, "") or "").strip():
            return _(
                "Missing {attribute} (required): without it the results cannot be filed with their study; fix "
                "the sending system's export and send the instance again."
            ).format(attribute=keyword)
    return None


def size_reason(data: bytes) -> str | None:
    """Why an instance is too large to parse (received bytes, or a deflated dataset that inflates past the
    image door's limit, counted while inflating); None if it may be read."""
    if len(data) > MAX_INSTANCE_BYTES:
        return _(
            "Instance over the {limit_mb} MB limit per instance: it is {size_mb:.0f} MB; send a single-frame film."
        ).format(size_mb=len(data) / 1024**2, limit_mb=MAX_INSTANCE_BYTES // 1024**2)
    if dicom_store.inflates_too_far(data):
        return _(
            "Deflated data over the {limit_mb} MB limit: the node stopped inflating the instance; send it uncompressed."
        ).format(limit_mb=dicom_store.max_inflated_bytes() // 1024**2)
    return None


def pixel_reason(header: Dataset) -> str | None:
    """Why the pixel data the header describes (or one header element) is too large to decode here."""
    if dicom_store.element_too_large(header):
        return _(
            "Header element over the {limit_mb} MB limit per element: the instance is damaged or padded; "
            "export it again."
        ).format(limit_mb=dicom_store.max_element_bytes() // 1024**2)
    try:
        rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
        frames = int(header.get("NumberOfFrames") or 1)
        samples, bits = int(header.get("SamplesPerPixel") or 1), int(header.get("BitsAllocated") or 16)
    except (TypeError, ValueError):
        return None  # the door refuses an unreadable size with its own message
    described = rows * columns * max(frames, 1) * samples * -(-max(bits, 8) // 8)
    if described > MAX_INSTANCE_PIXEL_BYTES:
        return _(
            "Pixel data over the {limit_mb} MB limit per instance: {rows} x {columns} pixels, {frames} frame(s), "
            "{size_mb:.0f} MB; send a single-frame film of at most about 5,000 x 5,000 pixels."
        ).format(
            rows=rows,
            columns=columns,
            frames=frames,
            size_mb=described / 1024**2,
            limit_mb=MAX_INSTANCE_PIXEL_BYTES // 1024**2,
        )
    return None


def modality_of(sop_class: str, header: Dataset | None) -> str | None:
    """The header's Modality when it is a defined term (such as DX), else the one its SOP class implies."""
    value = str(header.get("Modality", "") or "").strip() if header is not None else ""
    return value if value in MODALITIES else CHEST_SOP_CLASSES.get(UID(sop_class))
