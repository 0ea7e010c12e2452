"""Served films on a simulated cluster (issue 23 item 6): the node that holds the image replica is killed while
films are on their way; every film comes back scored or with an error its caller sees, and Serve starts the
replica again on the surviving node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core import engine
from core.services import imaging


@pytest.fixture(scope="module")
def serving_cluster() -> Iterator[object]:
    """A head that runs nothing but Ray's and Serve's own processes, and two one-CPU worker machines."""
    from ray.cluster_utils import Cluster

    from core.engine import serving

    engine.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _machine in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUCIDDX_RAY_ADDRESS", cluster.address)  # a named cluster: films are served by default
        engine.connect()
        yield cluster
        serving.shutdown()
        engine.shutdown()
    cluster.shutdown()


def replica_node_id() -> str:
    import ray._private.state as gcs  # no dashboard here: the GCS's own actor table says where the replica runs

    for info in gcs.actors().values():
        if str(info.get("Name", "")).startswith("SERVE_REPLICA::luciddx-image") and info.get("State") == "ALIVE":
            return str(info["Address"]["NodeID"])
    raise AssertionError("no live image replica")


def test_the_node_of_the_replica_dies_and_no_film_is_lost(serving_cluster) -> None:
    from core.engine import serving

    classifier = imaging.load_model(None)
    assert type(classifier).__name__ == "ServedClassifier"  # the cluster scores; this process never runs TensorFlow
    imaging.serve_model(classifier.spec)
    prepared = classifier.prepare(np.random.default_rng(2).random((64, 64)).astype(np.float32))
    doomed = next(n for n in serving_cluster.worker_nodes if n.node_id == replica_node_id())

    def ask(_i: int) -> object:
        try:
            return serving.score(classifier.spec, prepared, True, None, "stored", imaging.SERVED_WORK)[0]
        except serving.ServingError as exc:
            return exc

    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(ask, i) for i in range(12)]
        time.sleep(0.5)
        serving_cluster.remove_node(doomed, allow_graceful=False)
        answers = [future.result(timeout=600) for future in pending]
    assert len(answers) == 12
    assert all(isinstance(a, serving.ServingError) or a.model == classifier.spec for a in answers), answers
    assert all("did not answer" in str(a) for a in answers if isinstance(a, Exception))
    # Serve placed the replica again on the machine that survived, and films are scored there.
    after = ask(99)
    assert not isinstance(after, Exception) and after.model == classifier.spec
    survivor = next(iter(serving_cluster.worker_nodes))
    assert replica_node_id() == survivor.node_id != doomed.node_id
