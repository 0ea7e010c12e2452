"""Models served by Ray Serve: one application per kind of model, replicas that load each version once.

    LUCIDDX_SERVE=on   core.services sends prepared films to the deployment (the page process never loads
                       TensorFlow); on by default when LUCIDDX_RAY_ADDRESS names a cluster
    LUCIDDX_SERVE=off  films are scored in the calling process (the default on one machine: see
                       docs/deploy.md for why and what was measured)

The replica runs the SAME functions as the in-process path (``core.imaging.saliency.predict_and_explain``,
``ImageClassifier.predict_prepared``): there is one prediction code path. ``@serve.batch`` gathers the
films that arrive together; films without explanation are scored in one forward pass per batch, films
with Grad-CAM are explained one by one inside the batch (Grad-CAM needs one gradient per film). The
threshold in force is read by the CALLER once per film and travels with it, so the label, the class its
map explains and every view of it come from one decision.

Versions are Serve's **multiplexed models**: every request names its ``NAME:VERSION``
(``multiplexed_model_id``), a replica loads a version on first use and keeps the last
``MODELS_PER_REPLICA`` it used, Serve routes a request to a replica that already holds its version, and a
batch never mixes versions (Serve splits it). Activating a version therefore restarts nothing: the new
version loads beside the old one (:func:`warm` does it ahead of the first film), requests for the old one
finish on it, and nothing is dropped. A researcher reading with another version than the clinicians does
not make the deployment switch back and forth.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from core.errors import LucidDxError
from core.i18n import _

SERVE_VARIABLE = "LUCIDDX_SERVE"
IMAGE_APP = "luciddx-image"
RISK_APP = "luciddx-risk"
RISK_REPLICA_CPUS = 0.25  # exact SHAP of a few patients is light: a risk replica must not take a job's CPU
APP_PREFIX = "luciddx-"
MAX_BATCH = 8
BATCH_WAIT_S = 0.01
MODELS_PER_REPLICA = 3  # the active version, the one before it, and one a researcher compares with
REQUEST_TIMEOUT_S = 120.0
_LOCK = threading.Lock()


class ServingError(LucidDxError):
    """A served model did not answer."""


def enabled() -> bool:
    """Whether core.services scores films on the Serve deployment (LUCIDDX_SERVE; see the module doc)."""
    from core import engine

    value = os.environ.get(SERVE_VARIABLE, "").strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    return not engine.embedded()


def app_name(spec: str) -> str:
    """The Serve application that serves the image model ``NAME:VERSION`` (one for every image model)."""
    return IMAGE_APP


class _Versions:
    """The versions a replica holds, most recently used last, as Serve's multiplexing LRU keeps them."""

    def __init__(self) -> None:
        self.order: OrderedDict[str, None] = OrderedDict()

    def used(self, spec: str) -> None:
        self.order[spec] = None
        self.order.move_to_end(spec)
        while len(self.order) > MODELS_PER_REPLICA:
            self.order.popitem(last=False)


def _film_model_class() -> Any:
    """The deployment class, built on first use so that importing this module does not import Serve."""
    from ray import serve

    @serve.deployment(
        name="FilmModel", max_ongoing_requests=64, health_check_period_s=2, graceful_shutdown_timeout_s=20
    )
    class FilmModel:
        """Image model versions, each loaded once per replica when first asked for."""

        def __init__(self, load: Any, predict_batch: Any, explain_one: Any, explain_method: Any) -> None:
            # The work comes from core.services (the engine imports no domain package): the same functions the
            # calling process would run, pickled by reference and imported here.
            self.load, self.predict_batch = load, predict_batch
            self.explain_one, self.explain_method = explain_one, explain_method
            self.versions = _Versions()
            self.batch_sizes: list[int] = []

        @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
        async def model(self, spec: str) -> Any:
            # Loading takes seconds: off the event loop, so the replica keeps answering its health checks.
            return await asyncio.to_thread(self.load, spec)

        async def _current(self) -> Any:
            spec = serve.get_multiplexed_model_id()
            classifier = await self.model(spec)
            self.versions.used(spec)
            return classifier

        @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
        async def score(self, films: list[tuple[np.ndarray, bool, float | None, str]]) -> list[tuple[Any, Any]]:
            classifier = await self._current()  # one version per batch: Serve splits batches by model id
            self.batch_sizes.append(len(films))
            answers: list[tuple[Any, Any] | None] = [None] * len(films)
            plain = [i for i, film in enumerate(films) if not film[1]]
            # Films without explanation: one forward pass for all that share a threshold.
            for key in {(films[i][2], films[i][3]) for i in plain}:
                rows = [i for i in plain if (films[i][2], films[i][3]) == key]
                batch = np.stack([np.asarray(films[i][0], dtype=np.float32) for i in rows])
                for i, prediction in zip(rows, self.predict_batch(classifier, batch, key[0], key[1])):
                    answers[i] = (prediction, None)
            for i, (prepared, explain, threshold, source) in enumerate(films):
                if explain:
                    answers[i] = self.explain_one(classifier, prepared, threshold, source)
            return answers  # type: ignore[return-value]

        async def __call__(self, film: tuple[np.ndarray, bool, float | None, str]) -> tuple[Any, Any]:
            return await self.score(film)

        async def explain(self, film: np.ndarray, method: str, target: str | None) -> Any:
            # Another method or class than the Grad-CAM that came with the prediction: one film, on request.
            return self.explain_method(await self._current(), film, method, target)

        async def loaded(self) -> list[str]:
            """Load the request's version if it is not yet held (warm-up); the versions this replica holds."""
            if serve.get_multiplexed_model_id():
                await self._current()
            return list(self.versions.order)

        def seen_batches(self) -> list[int]:
            return list(self.batch_sizes)

    return FilmModel


def _gpus() -> float:
    import ray

    return 1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0


def replicas_wanted() -> int:
    """Replicas per served model: LUCIDDX_SERVE_REPLICAS (default 1)."""
    try:
        return max(1, int(os.environ.get("LUCIDDX_SERVE_REPLICAS", "1")))
    except ValueError:
        return 1


Work = tuple[Any, Any, Any, Any]
"""(load(spec) -> model, predict_batch(model, films, threshold, source), explain_one(model, film, threshold, source),
explain_method(model, film, method, target)): the caller's own functions (core.services.imaging.SERVED_WORK),
run by the replica."""


def deploy(spec: str, work: Work, replicas: int | None = None) -> None:
    """Serve image models (the application, when it is not running yet, or with ``replicas`` now) and load
    ``NAME:VERSION`` in it.

    Raises:
        ServingError: Serve could not start the replicas, or the version could not be loaded (the message says
            which model).
    """
    _start(IMAGE_APP, _film_model_class, work, replicas, spec)
    warm(spec, work)


def _start(app: str, deployment: Any, work: tuple[Any, ...], replicas: int | None, spec: str) -> None:
    from ray import serve

    from core import engine

    engine.connect()
    with _LOCK:
        if app in _RUNNING and replicas is None:
            return
        try:
            serve.start(proxy_location="Disabled")  # no HTTP proxy: callers use handles only
            if replicas is None and _is_running(app):  # another process started it
                _RUNNING.add(app)
                return
            gpus = _gpus() if app == IMAGE_APP else 0.0
            cpus = RISK_REPLICA_CPUS if app == RISK_APP else (0 if gpus else 1)
            bound = (
                deployment()
                .options(
                    num_replicas=replicas or replicas_wanted(),
                    ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
                )
                .bind(*work)
            )
            serve.run(bound, name=app, route_prefix=None, blocking=False)
            _wait_running(app)
        except ServingError:
            raise
        except Exception as exc:  # Serve raises RayServeException, RuntimeError, ... : one clear message
            raise ServingError(
                _(
                    "The model {model} could not be served ({reason}); set {variable}=off to score in this process."
                ).format(model=spec, reason=type(exc).__name__, variable=SERVE_VARIABLE)
            ) from exc
        _RUNNING.add(app)


_RUNNING: set[str] = set()


def _is_running(app: str) -> bool:
    from ray import serve

    state = serve.status().applications.get(app)
    return state is not None and str(state.status).endswith("RUNNING")


def _wait_running(app: str, timeout_s: float = 180.0) -> None:
    import time

    from ray import serve

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = serve.status().applications.get(app)
        if state is not None and str(state.status).endswith("RUNNING"):
            return
        if state is not None and str(state.status).endswith("DEPLOY_FAILED"):
            raise ServingError(
                _("The served model {app} failed to start: {reason}").format(app=app, reason=state.message[:300])
            )
        time.sleep(0.2)
    raise ServingError(
        _("The served model {app} did not start within {seconds} s.").format(app=app, seconds=int(timeout_s))
    )


def handle(spec: str, work: Work) -> Any:
    """The handle that reaches ``spec`` in the image application (started first when needed)."""
    from ray import serve

    if IMAGE_APP not in _RUNNING:
        _start(IMAGE_APP, _film_model_class, work, None, spec)
    return serve.get_app_handle(IMAGE_APP).options(multiplexed_model_id=spec)


def warm(spec: str, work: Work) -> list[str]:
    """Load ``spec`` in a replica ahead of its first film (an activation calls it); the versions that replica
    holds.

    Raises:
        ServingError: the version could not be loaded (the message names it).
    """
    return _ask(spec, work, lambda served: served.loaded.remote())


def score(
    spec: str, prepared: np.ndarray, explain: bool, threshold: float | None, source: str, work: Work
) -> tuple[Any, Any]:
    """(Prediction, Explanation or None) of one prepared film from the deployment serving ``spec``.

    A replica that dies mid-request is retried once on another (Serve restarts it); then a clear error.

    Raises:
        ServingError: no answer from the served model.
    """
    film = (np.asarray(prepared, dtype=np.float32), bool(explain), threshold, source)
    return _ask(spec, work, lambda served: served.remote(film))


def explain(spec: str, prepared: np.ndarray, method: str, target: str | None, work: Work) -> Any:
    """The explanation ``method`` of class ``target`` of one prepared film, from the deployment serving ``spec``.

    Raises:
        ServingError: no answer from the served model.
    """
    film = np.asarray(prepared, dtype=np.float32)
    return _ask(spec, work, lambda served: served.explain.remote(film, method, target))


def _ask(spec: str, work: Work, call: Any) -> Any:
    return _ask_app(IMAGE_APP, _film_model_class, spec, work, call)


def _ask_app(app: str, deployment: Any, spec: str, work: tuple[Any, ...], call: Any) -> Any:
    from ray import serve

    last: Exception | None = None
    for _attempt in range(2):
        if app not in _RUNNING:  # a model that cannot be deployed is a ServingError now, not retried
            _start(app, deployment, work, None, spec)
        served = serve.get_app_handle(app).options(multiplexed_model_id=spec)
        try:
            return call(served).result(timeout_s=REQUEST_TIMEOUT_S)
        except LucidDxError:
            raise  # the model's own answer (an unknown method, ...): the caller's message, not a lost replica
        except Exception as exc:  # ActorDiedError, RayActorError, TimeoutError, ...: retried once
            last = exc
            _RUNNING.discard(app)  # ask Serve again whether the application still runs
    raise ServingError(
        _("The served model {model} did not answer ({reason}); try again, or set {variable}=off.").format(
            model=spec, reason=type(last).__name__, variable=SERVE_VARIABLE
        )
    ) from last


RiskWork = tuple[Any, Any]
"""(load(spec) -> predictor, predict(predictor, patients, warnings) -> results): core.services.tabular's own
functions (``SERVED_WORK``), run by the replica."""


def _risk_model_class() -> Any:
    """The risk models' deployment class (built on first use, as the films' one)."""
    from ray import serve

    @serve.deployment(
        name="RiskModel", max_ongoing_requests=64, health_check_period_s=2, graceful_shutdown_timeout_s=20
    )
    class RiskModel:
        """Risk model versions, each loaded once per replica when first asked for."""

        def __init__(self, load: Any, predict: Any) -> None:
            self.load, self.predict = load, predict
            self.versions = _Versions()

        @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
        async def model(self, spec: str) -> Any:
            return await asyncio.to_thread(self.load, spec)

        async def _current(self) -> Any:
            spec = serve.get_multiplexed_model_id()
            predictor = await self.model(spec)
            self.versions.used(spec)
            return predictor

        async def __call__(self, patients: list[dict[str, Any]], warnings: list[list[str]] | None) -> list[Any]:
            return self.predict(await self._current(), patients, warnings)

        async def loaded(self) -> list[str]:
            if serve.get_multiplexed_model_id():
                await self._current()
            return list(self.versions.order)

    return RiskModel


def score_patients(
    spec: str, patients: list[dict[str, Any]], warnings: list[list[str]] | None, work: RiskWork
) -> list[Any]:
    """Risks and exact SHAP of validated patients from the replica holding risk model ``spec``.

    Raises:
        ServingError: no answer from the served model.
    """
    return _ask_app(RISK_APP, _risk_model_class, spec, work, lambda served: served.remote(patients, warnings))


def warm_risk(spec: str, work: RiskWork) -> list[str]:
    """Load risk model ``spec`` in a replica ahead of its first patient; the versions that replica holds."""
    return _ask_app(RISK_APP, _risk_model_class, spec, work, lambda served: served.loaded.remote())


def deployments() -> list[dict[str, Any]]:
    """CLI.md ``engine status``: {"name", "model", "replicas"} per version that a served model's replicas hold
    (empty when Serve is not up)."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        return []
    try:
        applications = serve.status().applications
    except Exception:  # Serve never started on this cluster
        return []
    rows = []
    for app, state in sorted(applications.items()):
        if not app.startswith(APP_PREFIX):
            continue
        for name, deployment in state.deployments.items():
            # Replica states are keyed by an enum whose text is the state's name; read as text (no private import).
            states = {str(k).rsplit(".", 1)[-1]: int(v) for k, v in (deployment.replica_states or {}).items()}
            running = states.get("RUNNING", 0)
            for spec in _held(app, name, running):
                rows.append({"name": f"{app}/{name}", "model": spec, "replicas": running})
    return rows


def _held(app: str, deployment: str, replicas: int) -> list[str]:
    """The versions the replicas hold, as they report them (each call reaches one replica: ask a few times)."""
    from ray import serve

    held: set[str] = set()
    if replicas == 0:
        return []
    served = serve.get_deployment_handle(deployment, app_name=app)
    for _attempt in range(2 * replicas):
        try:
            held.update(served.loaded.remote().result(timeout_s=10))
        except Exception:  # a replica starting or stopping: the others answer
            continue
    return sorted(held)


def shutdown() -> None:
    """Stop every served model (tests; an engine being stopped)."""
    import ray

    if ray.is_initialized():
        from ray import serve

        serve.shutdown()
    _RUNNING.clear()
