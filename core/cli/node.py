"""DICOM commands: ``dicom-node`` (the storage SCP) and ``worklist`` (what it received)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from core.cli.common import EXIT_MISUSE, EXIT_OK, emit, log, safe_text
from core.errors import DicomNodeError, LucidDxError


def cmd_dicom_node(args: argparse.Namespace) -> int:
    from core.dicomnode import pacs
    from core.dicomnode.scp import DicomNode

    # Our own progress at INFO; libraries (pynetdicom, highdicom, alembic) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("core").setLevel(logging.INFO)
    from core.services import approval, imaging

    target = pacs.configured()
    try:
        # Its results reach clinicians and the PACS: an unapproved --model is refused before listening.
        imaging.usable_model(approval.CLINICAL_USE, args.model)
    except LucidDxError as exc:
        log(f"error: {safe_text(exc)}")
        return EXIT_MISUSE
    try:
        if target:
            pacs.parse(target)  # a malformed LUCIDDX_PACS is said before listening
        node = DicomNode(args.host, args.port, args.aet, model=args.model, pacs_target=target).start()
    except DicomNodeError as exc:  # a bad AE title, port in use, malformed LUCIDDX_PACS: the command's misuse
        log(f"error: {safe_text(exc)}")
        return EXIT_MISUSE
    log(
        f"DICOM node {node.aet} listening on {node.host}:{node.port}; results under {node.home / 'dicom'} "
        "(Ctrl-C stops it)"
    )
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    node.stop()
    return EXIT_OK


def cmd_worklist(args: argparse.Namespace) -> int:
    from core.services import worklist

    emit(worklist.entries(status=args.status), args.json, worklist.summary)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    from core.services.worklist import STATUSES

    p = sub.add_parser("dicom-node", help="run the DICOM storage node (C-ECHO, C-STORE of chest radiographs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=11112)
    p.add_argument("--aet", default="LUCIDDX", help="this node's AE title (default LUCIDDX)")
    p.add_argument(
        "--model", default=None, help="NAME or NAME:VERSION of an approved (active) version (default: chest_xray)"
    )
    p.set_defaults(func=cmd_dicom_node)

    p = sub.add_parser("worklist", help="list the instances the DICOM node received and their results")
    p.add_argument("--status", choices=STATUSES, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_worklist)
