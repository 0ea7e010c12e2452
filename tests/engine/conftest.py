"""A real Ray for the engine tests: embedded (as a hospital's single machine runs it) or a simulated
two-node cluster (``ray.cluster_utils.Cluster``, as a head and a worker machine). Each is shut down when
its module ends, so no Ray outlives the tests that need it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHEST_XRAY_TRAIN


def sample_archive(folder: Path, per_class: int) -> Path:
    """Real training films in nested folders, plus one file that is no image."""
    for label in ("NORMAL", "PNEUMONIA"):
        target = folder / "ward" / label.lower()
        target.mkdir(parents=True, exist_ok=True)
        for film in sorted((CHEST_XRAY_TRAIN / label).iterdir())[:per_class]:
            shutil.copy(film, target / film.name)
    (folder / "ward" / "notes.png").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def embedded_engine() -> Iterator[None]:
    from core import engine

    engine.shutdown()
    engine.connect(num_cpus=2)
    yield
    engine.shutdown()


@pytest.fixture(scope="module")
def two_node_cluster() -> Iterator[object]:
    from ray.cluster_utils import Cluster

    from core import engine

    engine.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUCIDDX_RAY_ADDRESS", cluster.address)
        engine.connect()
        yield cluster
        engine.shutdown()
    cluster.shutdown()
