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


def test_a_training_job_lands_on_the_gpu_node_and_a_lost_node_fails_it(two_node_cluster, tmp_path: Path) -> None:
    """Jobs ask Ray for a GPU when the cluster has one; the node that held the job dying is reported."""
    from core.jobs import runner as jobs
    from core.models import registry
    from tests.imaging.test_training import real_subset

    gpu_node = two_node_cluster.add_node(num_cpus=1, num_gpus=1)  # Ray takes the declared GPU at its word
    two_node_cluster.wait_for_nodes()
    films = real_subset(tmp_path / "films", per_class=10, seed=3)
    job_id = jobs.start_job(jobs.JobRequest(data=str(films), name="on_gpu_node", epochs=500, image_size=32,
                                            batch_size=4))
    placed = jobs.refresh(job_id)["engine"]
    assert placed["gpus"] == 1 and placed["node_id"] == gpu_node.node_id

    two_node_cluster.remove_node(gpu_node, allow_graceful=False)
    final = jobs.wait(job_id, timeout=120)

    assert final["state"] == "failed" and "lost" in final["error"], final
    assert registry.list_versions("on_gpu_node") == []
