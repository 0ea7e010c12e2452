"""Image models served by Ray Serve (core.engine.serving) on a real embedded Ray: the same answer as in
this process, films that arrive together batched, a clear error rather than a hang."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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
