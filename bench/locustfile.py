"""Locust user for ``bench/bench_serve.py``: each user POSTs one film to ``/v1/predict`` in a loop.

Environment: BENCH_API_KEY (Bearer key), BENCH_FILM (path of the film). Runs in locust's own process,
never in the server's."""

from __future__ import annotations

import os
from pathlib import Path

from locust import HttpUser, task

FILM = Path(os.environ["BENCH_FILM"])
DATA = FILM.read_bytes()


class Clinician(HttpUser):
    @task
    def predict(self) -> None:
        self.client.post("/v1/predict", files={"file": (FILM.name, DATA, "image/jpeg")},
                         headers={"Authorization": f"Bearer {os.environ['BENCH_API_KEY']}"}, timeout=120)
