"""The DICOM node end to end against the bare ``core`` path, on the same files in the same run.

100 DX instances (the bundled sample films, 12 of them in turn, each with its own UIDs) are sent by
DCMTK's ``storescu`` in one association to the node running in this process; each is written,
queued, scored through ``core.services.imaging.diagnose`` and answered with its Secondary Capture and
SR. Latency is from receipt (the index's ``received``) to ``done`` (its ``finished``). The same files
are then scored by ``diagnose`` alone (the bare path: decode + predict, and with Grad-CAM).

    python bench/bench_dicom.py [--n 100] [--model chest_xray]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.dicomnode.scp import DicomNode  # noqa: E402
from core.imaging import dicom_index as index  # noqa: E402
from core.services import imaging as diagnosis  # noqa: E402

DX = "1.2.840.10008.5.1.4.1.1.1.1"


def make_dx(sample: Path, path: Path) -> str:
    """A DX For Presentation file of ``sample`` (8-bit greyscale); returns its SOP Instance UID."""
    grey = np.asarray(Image.open(sample).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = DX, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality, ds.BodyPartExamined = "BENCH^PATIENT", "BENCH", "DX", "CHEST"
    ds.PresentationIntentType, ds.PatientOrientation = "FOR PRESENTATION", ["L", "F"]
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = grey.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds.SOPInstanceUID


def seconds(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run_node(files: list[Path], uids: list[str], home: Path, model: str | None, threads: int = 1) -> dict:
    """Send every file with storescu; wait for all to finish; rates and latencies from the index."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = DicomNode("127.0.0.1", port, home=home, model=model, threads=threads).start()
    node.worker.ready.wait(300)
    try:
        start = time.perf_counter()
        subprocess.run(
            ["storescu", "-aec", "LUCIDDX", "127.0.0.1", str(port), *map(str, files)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        sent = time.perf_counter() - start
        while any(
            (entry := index.get(uid, home)) is None or entry.status not in ("done", "failed", "refused") for uid in uids
        ):
            time.sleep(0.05)
        wall = time.perf_counter() - start
    finally:
        node.stop()
    entries = [index.get(uid, home) for uid in uids]
    latencies = [1000 * (seconds(e.finished) - seconds(e.received)) for e in entries]
    return {"wall": wall, "sent": sent, "done": sum(e.status == "done" for e in entries), "latencies": latencies}


def run_bare(files: list[Path], model_spec: str | None, explain: bool) -> dict:
    model = diagnosis.load_model(model_spec)
    diagnosis.diagnose(files[0], "warm-up", model, explain=explain)
    times = []
    start = time.perf_counter()
    for path in files:
        began = time.perf_counter()
        diagnosis.diagnose(path, path.name, model, explain=explain)
        times.append(1000 * (time.perf_counter() - began))
    return {"wall": time.perf_counter() - start, "latencies": times, "done": len(files)}


def row(name: str, result: dict, n: int) -> str:
    lat = result["latencies"]
    return (
        f"| {name} | {result['done']}/{n} | {n / result['wall']:.1f} | {statistics.median(lat):.0f} | "
        f"{percentile(lat, 95):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--model", default=None)
    parser.add_argument("--serve", default="off,on", help="off: in-process only; off,on: also through Ray Serve")
    args = parser.parse_args()
    samples = diagnosis.sample_images()
    samples = [p for p in samples if p.suffix.lower() in (".jpeg", ".jpg", ".png")]
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        os.environ["LUCIDDX_HOME"] = str(home)
        files = [Path(folder) / f"{i:03d}.dcm" for i in range(args.n)]
        uids = [make_dx(samples[i % len(samples)], path) for i, path in enumerate(files)]
        nodes = {}
        for label, threads, serve in (
            ("one at a time", 1, "off"),
            ("4 threads", 4, "off"),
            ("4 threads, Ray Serve", 4, "on"),
        ):
            if serve not in args.serve.split(","):
                continue
            os.environ["LUCIDDX_SERVE"] = serve
            nodes[label] = run_node(files, uids, home / label.replace(" ", "_").replace(",", ""), args.model, threads)
        os.environ["LUCIDDX_SERVE"] = "off"
        bare = run_bare(files, args.model, explain=False)
        bare_cam = run_bare(files, args.model, explain=True)
        from core import engine

        engine.shutdown()
        engine.stop_local_head()
    base = nodes["one at a time"]
    print(
        f"{args.n} DX instances ({len(samples)} sample films in turn), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; storescu sent all in {base['sent']:.1f} s\n"
    )
    print("| path | done | instances/s | median ms | p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for label, result in nodes.items():
        print(
            row(
                f"DICOM node, {label}: storescu -> receive -> diagnose + Grad-CAM -> SC + SR written and checked "
                "(latency: receive to done)",
                result,
                args.n,
            )
        )
    print(row("bare core: diagnose(file), decode + predict", bare, args.n))
    print(row("bare core: diagnose(file) with Grad-CAM", bare_cam, args.n))
    for label, result in nodes.items():
        print(
            f"ratio node ({label}) / node one at a time, instances/s: {base['wall'] / result['wall']:.2f}x; "
            f"/ bare with Grad-CAM: {bare_cam['wall'] / result['wall']:.2f}x"
        )


if __name__ == "__main__":
    main()
