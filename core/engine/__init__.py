"""Where work runs: Ray, embedded on this machine by default, or the cluster ``LUCIDDX_RAY_ADDRESS`` names.

    LUCIDDX_RAY_ADDRESS unset  a local Ray is started for this process on first use (no extra step, no
                               dashboard, no usage reporting: nothing leaves the machine)
    LUCIDDX_RAY_ADDRESS=H:P    this process joins the running cluster whose head is H:P

The same code runs either way: callers ask :func:`connect` and submit Ray tasks or actors. Every node of
a cluster needs this project at the same path and the same LUCIDDX_HOME (a shared mount): the workers
import ``core`` from there and read the registry and site thresholds (docs/deploy.md).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from core import config
from core.errors import LucidDxError
from core.i18n import _

ADDRESS_VARIABLE = "LUCIDDX_RAY_ADDRESS"
# Ray reports usage to its developers unless told not to; an air-gapped hospital server never phones home.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
_LOCK = threading.Lock()


class EngineError(LucidDxError):
    """The Ray engine could not be started or reached."""


def address() -> str | None:
    """The cluster to join (``HOST:PORT`` of its head), or None for the embedded engine."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or None


def _worker_environment() -> dict[str, str]:
    return {
        "PYTHONPATH": str(config.PROJECT_ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LUCIDDX_HOME": str(config.luciddx_home()),
    }


def connect(num_cpus: int | None = None) -> None:
    """Join the configured cluster, or start the embedded engine; a no-op once connected.

    Raises:
        EngineError: the cluster named by LUCIDDX_RAY_ADDRESS does not answer, or Ray cannot start.
    """
    import ray

    with _LOCK:
        if ray.is_initialized():
            return
        target = address()
        options: dict[str, Any] = {
            "runtime_env": {"env_vars": _worker_environment()},
            "log_to_driver": False,
            "configure_logging": False,
            "namespace": "luciddx",
        }
        try:
            if target:
                ray.init(address=target, **options)
            else:
                # "local": a head left by another process on this machine (Ray's /tmp/ray/ray_current_cluster)
                # would otherwise be joined instead, and refuse num_cpus.
                ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = target or _("this machine")
            raise EngineError(
                _(
                    "The Ray engine on {where} could not be reached or started ({reason}). Check that "
                    "its head is running ('ray start --head') and that {variable} names it."
                ).format(where=where, reason=type(exc).__name__, variable=ADDRESS_VARIABLE)
            ) from exc


def embedded() -> bool:
    return address() is None


def status() -> dict[str, Any]:
    """CLI.md ``engine status``: the engine, where it is, its nodes (alive, CPUs, GPUs) and served models."""
    import ray

    connect()
    nodes = [
        {
            "node_id": n["NodeID"],
            "alive": bool(n["Alive"]),
            "cpus": float(n["Resources"].get("CPU", 0.0)),
            "gpus": float(n["Resources"].get("GPU", 0.0)),
        }
        for n in ray.nodes()
    ]
    context = ray.get_runtime_context()
    return {
        "engine": "ray",
        "address": address() or context.gcs_address,
        "embedded": embedded(),
        "nodes": nodes,
        "deployments": [],  # filled by core.services (the served models: core.engine.serving)
    }


def cluster_cpus() -> int:
    """CPUs of the alive nodes (at least 1): how many scorers an archive run can keep busy."""
    import ray

    connect()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def shutdown() -> None:
    """Leave the cluster (or stop the embedded engine)."""
    import ray

    with _LOCK:
        if ray.is_initialized():
            ray.shutdown()
