"""Service commands: ``serve-api`` (the REST API under uvicorn) and ``report`` (a PDF case report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, log, safe_text


def cmd_serve_api(args: argparse.Namespace) -> int:
    import uvicorn

    log(f"LucidDx API on http://{args.host}:{args.port} (docs: /docs, OpenAPI: /openapi.json)")
    uvicorn.run(
        "core.api:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        server_header=False,
        proxy_headers=False,
    )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from core.services import reports

    done = reports.case_report(
        [(Path(name), name) for name in args.files], args.model, args.method, args.report_lang, args.target
    )
    Path(args.out).write_bytes(done.pdf)
    for item in done.failed:
        log(f"error: {safe_text(item['error'])}")
    log(f"wrote {args.out} ({len(args.files) - len(done.failed)} page(s), {done.model})")
    return EXIT_BAD_INPUT if done.failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve-api", help="serve the REST API (FastAPI + uvicorn; docs at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes; each loads the models once")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve_api)

    p = sub.add_parser("report", help="a PDF case report: film, overlay, result, model card, one page per film")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default=None, help="NAME or NAME:VERSION (default: chest_xray)")
    p.add_argument("--method", default="gradcam", help="explanation method (gradcam, gradcam++, scorecam, smoothgrad)")
    p.add_argument(
        "--target", default=None, metavar="CLASS", help="class the overlay explains (default: the model's call)"
    )
    p.add_argument("--out", required=True, metavar="PDF")
    p.add_argument(
        "--lang",
        dest="report_lang",
        choices=("en", "zh"),
        default=None,
        help="report language (default: the global --lang, else $LUCIDDX_LANG, else en)",
    )
    p.set_defaults(func=cmd_report)
