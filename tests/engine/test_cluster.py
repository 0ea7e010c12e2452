"""The same scoring on a simulated two-node cluster (``ray.cluster_utils.Cluster``): work lands on both
nodes, and a node killed mid-run loses no film."""

from __future__ import annotations

from pathlib import Path

from core import engine
from core.services import archive
from core.services.audit import os_actor
from tests.engine.conftest import sample_archive


def test_status_lists_both_nodes_of_the_named_cluster(two_node_cluster) -> None:
    state = engine.status()
    assert state["embedded"] is False and state["address"] == two_node_cluster.address
    assert len([n for n in state["nodes"] if n["alive"]]) == 2


def test_work_lands_on_both_nodes(two_node_cluster, tmp_path: Path) -> None:
    data = sample_archive(tmp_path / "archive", per_class=8)
    summary = archive.score_folder(os_actor(), data, tmp_path / "scores.csv")
    assert (summary["n"], summary["failed"]) == (17, 1)
    assert summary["nodes_used"] == 2


def test_a_node_killed_mid_run_loses_no_film(two_node_cluster, tmp_path: Path) -> None:
    data = sample_archive(tmp_path / "archive", per_class=12)
    worker = next(node for node in two_node_cluster.worker_nodes)

    def kill_after_first_batch(done: int, total: int) -> None:
        if worker in two_node_cluster.worker_nodes and done >= archive.BATCH_FILES:
            two_node_cluster.remove_node(worker, allow_graceful=False)

    summary = archive.score_folder(os_actor(), data, tmp_path / "scores.csv", progress=kill_after_first_batch)
    rows = summary["rows"]
    assert summary["n"] == 25 and len({r["file"] for r in rows}) == 25  # every film has its row
    # The killed node's batch went to the surviving worker: only the file that is no image failed.
    assert [r["file"] for r in rows if not r["ok"]] == ["ward/notes.png"] and summary["ok"] == 24
    assert worker not in two_node_cluster.worker_nodes  # the node really was killed mid-run
