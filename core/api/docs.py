"""``/docs`` without a CDN: a plain HTML page written from the OpenAPI document itself.

FastAPI's default Swagger UI loads its JavaScript and CSS from a CDN, which an air-gapped hospital
network cannot reach, and no copy of those assets ships with our packages; so this page lists every
route, its parameters and responses, and links the machine-readable ``/openapi.json``.
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1e293b}"
    "code{background:#f1f5f9;padding:0 .2rem}h2{margin-top:2rem;border-bottom:1px solid #cbd5e1}"
    ".m{font-weight:bold;color:#0f766e;margin-right:.5rem}"
)


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        f"<li><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))}"
        f"{', required' if p.get('required') else ''}): {escape(p.get('description', ''))}</li>"
        for p in operation.get("parameters", [])
    ]
    body = operation.get("requestBody", {}).get("content", {})
    rows += [f"<li>body: <code>{escape(kind)}</code></li>" for kind in body]
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    codes = ", ".join(escape(code) for code in operation.get("responses", {}))
    secured = " (API key)" if operation.get("security") else " (no key needed)"
    return (
        f"<h3><span class='m'>{escape(method.upper())}</span><code>{escape(path)}</code>{secured}</h3>"
        f"<p>{escape(operation.get('summary', ''))}</p><p>{escape(operation.get('description', ''))}</p>"
        f"{_parameters(operation)}<p>Responses: {codes}</p>"
    )


def render(spec: dict[str, Any]) -> str:
    """The whole page: title, authentication, then each route in path order."""
    info = spec.get("info", {})
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(info.get('title', ''))}"
        f"</title><style>{STYLE}</style></head><body><h1>{escape(info.get('title', ''))} "
        f"{escape(info.get('version', ''))}</h1><p>{escape(info.get('description', ''))}</p>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI). Authenticate with the "
        "header <code>Authorization: Bearer &lt;api key&gt;</code>.</p>"
    ]
    for path, operations in sorted(spec.get("paths", {}).items()):
        parts += [_operation(path, method, op) for method, op in operations.items()]
    return "".join(parts) + "</body></html>"
