"""Issue 22 items 2 and 3: a real uvicorn server, raw chunked requests over a socket.

The key is checked before any byte of a body is read (no multipart spooling to temporary disk), and
bodies are counted as they stream, Content-Length or ``Transfer-Encoding: chunked`` alike: past the
route's limit the answer is 413 with the limit named, while the sender is still sending.
Limits are lowered so that megabytes stand for the gigabytes of the attack.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette import formparsers

from core.api import create_app, limits, uploads
from core.tabular import batch

CHUNK = 64 * 1024
BOUNDARY = "guardboundary"
FORM_HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.dcm\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode()


@pytest.fixture
def server(isolated_home, monkeypatch) -> Iterator[tuple[int, list[int]]]:
    """(port, spooled): a uvicorn server in a thread; ``spooled`` grows by one per temporary upload file."""
    monkeypatch.setattr(uploads, "MAX_BYTES", 2 * 1024**2)
    monkeypatch.setattr(limits, "FORM_OVERHEAD", CHUNK)
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", CHUNK)
    monkeypatch.setattr(batch, "MAX_CSV_BYTES", 1024**2)
    spooled: list[int] = []
    real = formparsers.SpooledTemporaryFile

    def counting(*args, **kwargs):
        spooled.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", counting)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                             lifespan="off"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    yield port, spooled
    instance.should_exit = True
    thread.join(10)


def _send_chunked(port: int, path: str, content_type: str, first: bytes, headers: dict[str, str] | None = None,
                  total: int = 32 * 1024**2) -> tuple[int, dict, int]:
    """POST a chunked body (``first``, then zero bytes up to ``total``), never finishing it unless the
    server lets it; stop as soon as the server answers. Returns (status, JSON body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked",
             f"Content-Type: {content_type}", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, payload = 0, first
    try:
        while sent < total:
            chunk = payload or bytes(CHUNK)
            payload = b""
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            if select.select([sock], [], [], 0.01 if sent > CHUNK else 1.0)[0]:
                break  # the server has answered: the rest of the body is not wanted
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
        part = sock.recv(65536)
        if not part:
            break
        answer += part
    sock.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body[:_length(answer)]), sent


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    found = [line.split(":", 1)[1] for line in head.split("\r\n") if line.startswith("content-length:")]
    return int(found[0]) if found else 1 << 30


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/explain", "/v1/report", "/v1/risk"])
def test_no_key_is_refused_before_the_body_is_read(server, path: str) -> None:
    port, spooled = server
    status, body, sent = _send_chunked(port, path, f"multipart/form-data; boundary={BOUNDARY}", FORM_HEAD)
    assert status == 401 and "API key" in body["detail"]
    assert sent < 4 * 1024**2  # answered while the 32 MB body was still being sent
    assert spooled == []  # no upload was spooled to temporary disk


def test_a_wrong_key_is_refused_before_the_body_is_read(server) -> None:
    port, spooled = server
    status, body, _sent = _send_chunked(port, "/v1/predict", f"multipart/form-data; boundary={BOUNDARY}", FORM_HEAD,
                                        {"Authorization": "Bearer ldx_nope_nope"})
    assert status == 401 and "not valid" in body["detail"] and spooled == []


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/explain", "/v1/report"])
def test_a_chunked_image_upload_past_the_limit_is_413_while_streaming(server, clinician, path: str) -> None:
    port, _spooled = server
    status, body, sent = _send_chunked(port, path, f"multipart/form-data; boundary={BOUNDARY}", FORM_HEAD, clinician)
    assert status == 413 and "2 MB limit" in body["detail"], body
    assert sent < 12 * 1024**2  # refused at the limit, not after the 32 MB body


def test_chunked_risk_bodies_past_their_limits_are_413(server, clinician) -> None:
    port, _spooled = server
    status, body, sent = _send_chunked(port, "/v1/risk", "application/json", b'{"Age": "' + b"1" * 1000,
                                       clinician)
    assert status == 413 and "64 KB limit" in body["detail"] and sent < 12 * 1024**2
    status, body, sent = _send_chunked(port, "/v1/risk", f"multipart/form-data; boundary={BOUNDARY}", FORM_HEAD,
                                       clinician)
    assert status == 413 and "1 MB limit" in body["detail"] and sent < 12 * 1024**2


def test_a_content_length_past_the_limit_is_refused_unread(client, clinician, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", 1000)
    response = client.post("/v1/risk", headers={**clinician, "Content-Type": "application/json"},
                           content=b"{" + b" " * 2000 + b"}")
    assert response.status_code == 413 and "limit for one patient" in response.json()["detail"]


def test_deeply_nested_json_is_a_clear_422(client, clinician) -> None:
    """Issue 22 item 3: {"a":{"a":...}} 20,000 deep was a 500 (RecursionError)."""
    body = '{"a":' * 20_000 + "1" + "}" * 20_000
    response = client.post("/v1/risk", headers={**clinician, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 422 and "nested too deeply" in response.json()["detail"]
    listed = client.post("/v1/risk", headers={**clinician, "Content-Type": "application/json"},
                         content="[" * 20_000 + "]" * 20_000)
    assert listed.status_code == 422


def test_a_deflate_bomb_to_predict_is_a_422_naming_the_limit(client, clinician, monkeypatch) -> None:
    """Issue 22 item 1 through POST /v1/predict (the door's test has the memory bound)."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from core.imaging import dicom
    from tests.imaging.test_dicom_limits import padded

    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 2 * 1024**2)
    bomb = padded(DeflatedExplicitVRLittleEndian, 64 * 1024**2)
    response = client.post("/v1/predict", headers=clinician, files={"file": ("bomb.dcm", bomb, "application/dicom")})
    assert response.status_code == 422 and "2 MB limit" in response.json()["detail"]


def test_a_csv_past_the_row_cap_is_refused_naming_the_cap(client, clinician) -> None:
    """Issue 22 item 4 through POST /v1/risk: the real cap (100,000 rows), a 300 KB file of tiny rows."""
    many = b"Glucose\n" + b"1\n" * 150_000
    response = client.post("/v1/risk", headers=clinician, files={"file": ("many.csv", many, "text/csv")})
    assert response.status_code == 422 and "many.csv: has more than 100,000 rows" in response.json()["detail"]
