"""Sending results on to a PACS by C-STORE (``LUCIDDX_PACS=AET@host:port``; off when unset)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pydicom
from pynetdicom import AE

from core.errors import DicomNodeError
from core.i18n import _

log = logging.getLogger(__name__)
_TARGET = re.compile(r"^(?P<aet>[^@\\]{1,16})@(?P<host>[^:@]+):(?P<port>[0-9]{1,5})$")


def configured() -> str | None:
    """The PACS results go to (``LUCIDDX_PACS``), or None."""
    return os.environ.get("LUCIDDX_PACS") or None


def parse(target: str) -> tuple[str, str, int]:
    """'AET@host:port' -> (aet, host, port); raises DicomNodeError naming the expected form."""
    match = _TARGET.match(target.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise DicomNodeError(_("LUCIDDX_PACS must look like AET@host:port (for example PACS@10.0.0.5:104)."))
    return match["aet"], match["host"], int(match["port"])


def send(paths: list[Path], target: str, calling_aet: str = "LUCIDDX") -> str | None:
    """C-STORE every file to ``target``; None when all were stored, else the reason (for the worklist)."""
    try:
        aet, host, port = parse(target)
    except DicomNodeError as exc:
        return str(exc)
    datasets = [pydicom.dcmread(path) for path in paths]
    ae = AE(ae_title=calling_aet)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(host, port, ae_title=aet)
    if not assoc.is_established:
        return _("Results kept here; the PACS {aet} at {host}:{port} did not accept an association.").format(
            aet=aet, host=host, port=port
        )
    try:
        failed = [ds for ds in datasets if getattr(assoc.send_c_store(ds), "Status", 0xFFFF) != 0x0000]
    finally:
        assoc.release()
    if failed:
        return _("Results kept here; the PACS {aet} refused {n} of them.").format(aet=aet, n=len(failed))
    log.info("results sent to %s", aet)
    return None
