"""The DICOM storage node (pynetdicom): C-ECHO, and C-STORE of chest radiographs into the worker's queue.

The receiving thread does little: it screens the instance (:mod:`core.dicomnode.admission`), writes
the bytes as received to ``dicom/incoming/<SOP Instance UID>.dcm`` (atomically), adds a ``queued``
row to the index and hands the UID to the worker. A refused instance gets a ``refused`` row with its
reason and a failure status back to the sender. No handler lets an exception out: a malformed
dataset or an aborted association leaves the node serving.

Logs name instances by SOP Instance UID and senders by AE title; pynetdicom's own logger is held at
WARNING so that no dataset dump (with patient fields) can reach a log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from core import config
from core.dicomnode import admission
from core.dicomnode.worker import Worker, note_instance
from core.errors import DicomNodeError
from core.i18n import _
from core.services import dicom_store as index
from core.services.audit import sha256_of

log = logging.getLogger(__name__)
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_AET = "127.0.0.1", 11112, "LUCIDDX"
STATUS_OK = 0x0000
STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122  # "Refused: SOP Class not supported" (PS3.4 Annex B)
STATUS_CANNOT_UNDERSTAND = 0xC000  # "Error: Cannot understand"
STATUS_DOES_NOT_MATCH = 0xA900  # "Error: Data Set does not match SOP Class"
STATUS_PROCESSING_FAILURE = 0x0110
STATUS_OUT_OF_RESOURCES = 0xA700  # "Refused: Out of Resources": the instance is over a stated size limit
MAX_PDU = 0  # unlimited receive PDU size


def _status(code: int, comment: str | None = None) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment.encode("ascii", "replace").decode("ascii")[:64]
    return status


class DicomNode:
    """A storage SCP plus its worker. ``start()`` returns once it listens; ``stop()`` shuts both down."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        aet: str = DEFAULT_AET,
        home: Path | None = None,
        model: str | None = None,
        pacs_target: str | None = None,
        threads: int | None = None,
    ) -> None:
        if not aet or len(aet) > 16 or not aet.isascii() or "\\" in aet:
            raise DicomNodeError(_("The AE title must be 1 to 16 ASCII characters without a backslash."))
        self.host, self.port, self.aet = host, port, aet
        self.home = home or config.luciddx_home()
        self.worker = Worker(self.home, model, pacs_target, threads)
        self._server = None

    def build_ae(self) -> AE:
        ae = AE(ae_title=self.aet)
        ae.maximum_pdu_size = MAX_PDU
        ae.add_supported_context(Verification)
        decodable = admission.decodable_transfer_syntaxes()
        for context in AllStoragePresentationContexts:
            # Every storage class is accepted at negotiation, so that a CT or MR sent by mistake is
            # refused with a reason in the worklist rather than a bare rejected context.
            syntaxes = decodable if context.abstract_syntax in admission.CHEST_SOP_CLASSES else None
            ae.add_supported_context(context.abstract_syntax, syntaxes or context.transfer_syntax)
        return ae

    def start(self) -> DicomNode:
        """Listen on (host, port) in background threads; raises DicomNodeError if the port is taken."""
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        logging.getLogger("pydicom").setLevel(logging.ERROR)  # its warnings can quote element values
        handlers = [(evt.EVT_C_ECHO, self.on_echo), (evt.EVT_C_STORE, self.on_store)]
        try:
            self._server = self.build_ae().start_server((self.host, self.port), block=False, evt_handlers=handlers)
        except OSError as exc:
            raise DicomNodeError(
                _(
                    "The DICOM node cannot listen on {host}:{port} ({error}); choose another "
                    "--port or stop what uses it."
                ).format(host=self.host, port=self.port, error=exc.strerror or exc)
            ) from exc
        self.port = self._server.server_address[1]
        self.worker.start()
        self.resume()
        log.info("DICOM node %s listening on %s:%s", self.aet, self.host, self.port)
        return self

    def resume(self) -> int:
        """Queue again what an earlier run accepted but did not finish (it stopped or was killed mid-way): the
        sender was told "success", so the film must still be scored. Returns how many were queued."""
        pending = index.unfinished(self.home)
        for entry in pending:
            path = index.incoming_path(entry.sop_instance_uid, self.home)
            sha256 = sha256_of(path.read_bytes()) if path.is_file() else None
            if sha256 is None:  # the received file is gone: say so rather than leave the row waiting
                index.update(
                    entry.sop_instance_uid,
                    self.home,
                    status="failed",
                    reason=_("The received file was lost before it could be scored; ask the sender to send it again."),
                    finished=index.now_text(),
                )
                continue
            index.update(entry.sop_instance_uid, self.home, status="queued")
            self.worker.submit(entry.sop_instance_uid, entry.calling_aet or "", sha256)
        if pending:
            log.info("resumed %d instance(s) accepted before the node stopped", len(pending))
        return len(pending)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
            self.worker.stop()

    @staticmethod
    def _refusal_status(sop_class: str, header: Dataset | None) -> int:
        if sop_class not in map(str, admission.CHEST_SOP_CLASSES):
            return STATUS_SOP_CLASS_NOT_SUPPORTED
        return STATUS_CANNOT_UNDERSTAND if header is None else STATUS_DOES_NOT_MATCH

    def on_echo(self, event: evt.Event) -> int:
        return STATUS_OK

    def on_store(self, event: evt.Event) -> Dataset | int:
        """Screen, write, index and queue one received instance; every failure becomes a status."""
        try:
            return self.receive(event)
        except Exception as exc:  # never let a dataset take the association (or the node) down
            # The exception's text may quote header values: its type only, the traceback on request.
            log.error(
                "receiving an instance failed unexpectedly (%s)",
                type(exc).__name__,
                exc_info=bool(os.environ.get("LUCIDDX_DEBUG")),
            )
            return _status(STATUS_PROCESSING_FAILURE, "LucidDx could not store the instance")

    def receive(self, event: evt.Event) -> Dataset | int:
        uid = str(event.request.AffectedSOPInstanceUID or "")
        sop_class = str(event.request.AffectedSOPClassUID or "")
        sender = admission.sender_name(event.assoc.requestor.ae_title)
        data = event.encoded_dataset(include_meta=True)
        sha256 = sha256_of(data)
        if not index.is_uid(uid):
            note_instance(sender, None, sha256, "bad-input")
            log.warning("refused an instance from %s: its SOP Instance UID is not a valid UID", sender)
            return _status(STATUS_CANNOT_UNDERSTAND, "SOP Instance UID is not a valid UID")
        header, code = None, STATUS_OUT_OF_RESOURCES
        reason = admission.size_reason(data)  # before parsing: a deflate bomb is never inflated
        if reason is None:
            try:
                header = admission.read_header(data)
            except Exception:  # pydicom raises many types for a damaged header; all mean the same
                header = None
            reason, code = admission.screen(sop_class, uid, header), self._refusal_status(sop_class, header)
            if reason is None and (reason := admission.pixel_reason(header)) is not None:
                code = STATUS_OUT_OF_RESOURCES
        entry = index.Entry(uid, index.now_text(), admission.modality_of(sop_class, header), sop_class, sender)
        if reason is not None:
            entry.status, entry.reason, entry.finished = "refused", reason, index.now_text()
            note_instance(sender, None, sha256, "bad-input")
            index.put(entry, self.home)
            log.info("instance %s from %s: refused (%s)", uid, sender, reason)
            return _status(code, reason)
        index.write_atomically(index.incoming_path(uid, self.home), data)
        index.put(entry, self.home)
        self.worker.submit(uid, sender, sha256)
        log.info("instance %s (%s) from %s: queued", uid, entry.modality, sender)
        return STATUS_OK
