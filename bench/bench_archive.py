"""Archive scoring (``score-folder``) on the engine: films/s on one node and on a simulated two-node cluster,
against the bare in-process path (``core.services.imaging.diagnose`` in a loop) in the same run.

N real training films (``../shared/data/chest_xray/train``, both classes) are scored three ways:

- bare:     one process, the model loaded once, ``diagnose(..., explain=False)`` per film;
- 1 node:   ``score_folder`` on the embedded Ray (this machine's CPUs, one actor per CPU);
- 2 nodes:  ``score_folder`` on ``ray.cluster_utils.Cluster`` with the CPUs split over two simulated nodes.

Each engine run is timed twice: the first includes starting the engine, the second only its actors
(each loads the model once per run, as a real run does). The larger N, the closer both come to the rate
a long archive runs at. On one
machine the simulated second node adds no cores, so it shows the engine's overhead, not a speed-up; what a
real second machine adds is written under the table.

    python bench/bench_archive.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "chest_xray" / "train"

from core import engine  # noqa: E402
from core.services import archive, imaging  # noqa: E402
from core.services.audit import os_actor  # noqa: E402


def copy_films(target: Path, n: int) -> Path:
    per_class = n // 2
    for label in ("NORMAL", "PNEUMONIA"):
        (target / label).mkdir(parents=True)
        for film in sorted((DATA / label).iterdir())[:per_class]:
            shutil.copy(film, target / label / film.name)
    return target


def bare(folder: Path) -> float:
    model = imaging.load_model(None)
    films = archive.list_films(folder)
    imaging.diagnose(films[0], None, model, explain=False)  # warm-up: graph tracing
    started = time.perf_counter()
    for film in films:
        imaging.diagnose(film, None, model, explain=False)
    return len(films) / (time.perf_counter() - started)


def engine_runs(folder: Path, out: Path) -> tuple[float, float, int]:
    first = archive.score_folder(os_actor(), folder, out)
    second = archive.score_folder(os_actor(), folder, out)
    return first["films_per_s"], second["films_per_s"], second["nodes_used"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LUCIDDX_HOME"] = str(Path(tmp) / "home")
        folder = copy_films(Path(tmp) / "films", args.n)
        out = Path(tmp) / "scores.csv"
        rows = [("bare loop, this process", bare(folder), None, 1)]
        engine.connect(num_cpus=cpus)
        first, steady, nodes = engine_runs(folder, out)
        rows.append((f"Ray embedded, {cpus} CPUs", first, steady, nodes))
        engine.shutdown()
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": max(1, cpus // 2), "include_dashboard": False})
        cluster.add_node(num_cpus=max(1, cpus - cpus // 2))
        cluster.wait_for_nodes()
        os.environ["LUCIDDX_RAY_ADDRESS"] = cluster.address
        engine.connect()
        first, steady, nodes = engine_runs(folder, out)
        rows.append((f"Ray cluster, 2 simulated nodes ({cpus} CPUs split)", first, steady, nodes))
        engine.shutdown()
        cluster.shutdown()
    base = rows[0][1]
    print(f"\n{args.n} films, {platform.processor() or platform.machine()}, {cpus} CPUs, Python {platform.python_version()}\n")
    print("| path | films/s (engine starting) | films/s (engine running) | vs bare | nodes used |")
    print("|---|---|---|---|---|")
    for name, first, steady, nodes in rows:
        rate = steady if steady is not None else first
        print(f"| {name} | {first:.2f} | {'' if steady is None else f'{steady:.2f}'} | {rate / base:.2f}x | {nodes} |")


if __name__ == "__main__":
    main()
