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

# The storage SOP classes of chest radiographs the model can read.
CHEST_SOP_CLASSES = {
    UID("1.2.840.10008.5.1.4.1.1.1"): "CR",  # Computed Radiography Image Storage
    UID("1.2.840.10008.5.1.4.1.1.1.1"): "DX",  # Digital X-Ray Image Storage - For Presentation
    UID("1.2.840.10008.5.1.4.1.1.1.1.1"): "DX",  # Digital X-Ray Image Storage - For Processing
    UID("1.2.840.10008.5.1.4.1.1.7"): "OT",  # Secondary Capture Image Storage
}
CHEST_BODY_PARTS = {"CHEST", "THORAX", "LUNG"}
# Modality defined terms (PS3.3 C.7.3.1.1.1): a header's Modality is recorded only when it is one of them,
# so free text typed into it (a name, say) never reaches the index, the log or the worklist.
MODALITIES = frozenset("""
ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO IOL IVOCT
IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF
RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US
VA XA XAPROTOCOL XC
""".split())
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
        return _("Not a chest radiograph: {sop_class} is not read by this model; LucidDx reads CR, DX and "
                 "Secondary Capture chest films.").format(sop_class=name)
    if header.get("SOPClassUID") != sop_class or header.get("SOPInstanceUID") != sop_instance:
        return _("The DICOM header is damaged: its SOP Class or Instance UID does not match the request; "
                 "send the instance again.")
    body_part = str(header.get("BodyPartExamined", "") or "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        # The attribute is named, never its value: free text typed into it can identify the patient.
        return _("Not a chest radiograph: its Body Part Examined is not CHEST, THORAX or LUNG; the model reads "
                 "chest films only.")
    return None


def modality_of(sop_class: str, header: Dataset | None) -> str | None:
    """The header's Modality when it is a defined term (such as DX), else the one its SOP class implies."""
    value = str(header.get("Modality", "") or "").strip() if header is not None else ""
    return value if value in MODALITIES else CHEST_SOP_CLASSES.get(UID(sop_class))
