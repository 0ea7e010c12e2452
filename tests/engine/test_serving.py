"""Image models served by Ray Serve (core.engine.serving) on a real embedded Ray: the same answer as in
this process, films that arrive together batched, a clear error rather than a hang."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.services import imaging
from tests.conftest import CHEST_XRAY_TRAIN


@pytest.fixture(scope="module")
def served(embedded_engine) -> Iterator[str]:
    from core.engine import serving

    spec = imaging.load_model().ref.spec
    imaging.serve_model(spec)
    yield spec
    serving.shutdown()


def _films(n: int) -> list:
    return sorted((CHEST_XRAY_TRAIN / "PNEUMONIA").iterdir())[:n]


def test_a_film_scored_by_the_deployment_equals_the_in_process_result(served, monkeypatch) -> None:

    classifier = imaging.load_model(served)
    film = _films(1)[0]
    monkeypatch.setenv("LUCIDDX_SERVE", "off")
    local = imaging.diagnose(film, None, classifier)
    monkeypatch.setenv("LUCIDDX_SERVE", "on")
    remote = imaging.diagnose(film, None, classifier)
    assert local.ok and remote.ok
    assert remote.prediction.decision == local.prediction.decision
    for name, p in local.prediction.probabilities.items():
        assert abs(remote.prediction.probabilities[name] - p) < 1e-5
    np.testing.assert_allclose(remote.explanation.heatmap, local.explanation.heatmap, atol=1e-4)
    from core.services import archive

    rows = archive.engine_status()["deployments"]  # what `python -m core engine status` prints
    assert [(r["model"], r["replicas"]) for r in rows] == [(served, 1)]


def test_films_that_arrive_together_are_batched(served) -> None:
    from core.engine import serving

    classifier = imaging.load_model(served)
    prepared = classifier.prepare(np.random.default_rng(0).random((64, 64)).astype(np.float32))
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _i: serving.score(served, prepared, False, None, "stored", imaging.SERVED_WORK), range(32)))
    assert len(answers) == 32 and all(p.decision == answers[0][0].decision for p, _e in answers)
    sizes = serving.handle(served, imaging.SERVED_WORK).seen_batches.remote().result(timeout_s=30)
    assert max(sizes) > 1


def test_a_model_that_cannot_be_served_is_a_clear_error(embedded_engine) -> None:
    from core.engine import serving

    with pytest.raises(Exception) as caught:
        serving.score("no_such_model:v9", np.zeros((8, 8, 1), np.float32), False, None, "stored", imaging.SERVED_WORK)
    assert "no_such_model" in str(caught.value)


_SERVED_PROCESS = """
import json, sys
from core.services import imaging
classifier = imaging.load_model(sys.argv[1])
result = imaging.diagnose(sys.argv[2], None, classifier)
other = [c for c in classifier.classes if c != result.prediction.decision][0]
plus = imaging.explain(result, classifier, "gradcam++", other)
imaging.overlay(result.image.pixels, result.explanation, 0.4)
imaging.heatmap_png(plus, (40, 30))
print(json.dumps({
    "view": type(classifier).__name__,
    "tensorflow": "tensorflow" in sys.modules or "keras" in sys.modules,
    "probabilities": result.prediction.probabilities,
    "gradcam": result.explanation.heatmap.tolist(),
    "plus": [plus.method, plus.class_name, plus.heatmap.tolist()],
}))
"""


def test_a_process_whose_films_are_served_never_imports_tensorflow(served, tmp_path) -> None:
    """Issue 23: with LUCIDDX_SERVE on, the page/API process prepares films and draws maps, the replica runs
    the network: the same answer, and no TensorFlow in the asking process."""
    import json
    import os
    import subprocess
    import sys

    from core.imaging import saliency

    film = _films(2)[1]
    script = tmp_path / "served_process.py"
    script.write_text(_SERVED_PROCESS)
    env = os.environ | {"LUCIDDX_SERVE": "on", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(script), served, str(film)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["view"] == "ServedClassifier" and answer["tensorflow"] is False

    classifier = imaging.load_model(served)  # LUCIDDX_SERVE is off in this process: the network runs here
    local = imaging.diagnose(film, None, classifier)
    for name, p in local.prediction.probabilities.items():
        assert abs(answer["probabilities"][name] - p) < 1e-5
    np.testing.assert_allclose(np.array(answer["gradcam"]), local.explanation.heatmap, atol=1e-4)
    method, target, heat = answer["plus"]
    assert method == "gradcam++" and target != local.prediction.decision
    np.testing.assert_allclose(np.array(heat), saliency.explain(classifier, local.prepared, method, target).heatmap, atol=1e-3)


def test_activating_another_version_while_films_arrive_drops_none_and_restarts_nothing(served, monkeypatch) -> None:
    """Issue 23 item 2: activation switches the served version without dropping a request; films already on
    their way finish on the version they were prepared for, later ones use the new one, the replica stays."""
    import threading

    import ray

    from core.engine import serving
    from core.models import registry

    monkeypatch.setenv("LUCIDDX_SERVE", "on")
    name = served.partition(":")[0]
    other = next(ref.spec for ref in registry.list_versions(name) if ref.spec != served)

    def replica_names() -> set[str]:
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("SERVE_REPLICA::")}

    before = replica_names()
    film = _films(3)[2]
    answers: list[object] = []
    stop = threading.Event()

    def clinician() -> None:  # reads with the active version, resolved for every film, as the page does
        while not stop.is_set():
            try:
                result = imaging.diagnose(film, None, imaging.load_model(None), explain=False)
                answers.append(result.prediction.model if result.ok else result.error)
            except Exception as exc:  # any failure is a dropped request
                answers.append(exc)

    threads = [threading.Thread(target=clinician) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        while len(answers) < 6:
            threading.Event().wait(0.1)
        registry.activate(*other.split(":"))
        assert imaging.warm_served(other)
        seen = len(answers)
        while len(answers) < seen + 6:
            threading.Event().wait(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    assert all(a in (served, other) for a in answers), [a for a in answers if a not in (served, other)]
    assert answers[0] == served and answers[-1] == other
    assert replica_names() == before  # no replica was restarted for the switch
    rows = serving.deployments()
    assert {r["model"] for r in rows} >= {served, other} and {r["replicas"] for r in rows} == {1}


def test_a_replica_killed_mid_request_loses_no_request(served) -> None:
    """Issue 23 item 6 (last in this module: the killed replica's name lingers a while): every film sent while its replica is killed comes back scored, or with an error the
    caller sees; none hangs or vanishes."""
    import time

    import ray

    from core.engine import serving

    classifier = imaging.load_model(served)
    prepared = classifier.prepare(np.random.default_rng(1).random((64, 64)).astype(np.float32))
    replicas = [
        actor
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and actor["name"].startswith("SERVE_REPLICA::" + serving.app_name(served))
    ]
    assert len(replicas) == 1

    def ask(_i: int) -> object:
        try:
            return serving.score(served, prepared, True, None, "stored", imaging.SERVED_WORK)[0]
        except serving.ServingError as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        pending = [pool.submit(ask, i) for i in range(12)]
        time.sleep(0.5)
        ray.kill(ray.get_actor(replicas[0]["name"], namespace="serve"), no_restart=False)
        answers = [future.result(timeout=400) for future in pending]
    scored = [a for a in answers if not isinstance(a, Exception)]
    assert len(answers) == 12
    assert all(a.decision == scored[0].decision for a in scored)
    assert all("did not answer" in str(a) for a in answers if isinstance(a, Exception))
    assert len(scored) >= 6, answers  # Serve starts a new replica and the retry lands on it
