"""Jobs on the engine: each job's command runs in its own detached Ray actor, wherever the cluster places it.

A job is one named, detached actor (``luciddx-job-<id>``) running ``python -m core <command>``'s own
``main`` in its worker process, with the job folder's ``result.json`` as its standard output and
``log.txt`` as its standard error. Detached: it belongs to the cluster, not to the process that started
it, so a dashboard that restarts (or a CLI that exits) leaves the job running. It asks for one CPU, and
one GPU when the job wants one and the cluster has one. Ray places it, Ray kills it (cancel), and
:func:`alive` asks Ray whether it still exists: no pid files, no signals of our own.

This module knows nothing of what a job does (``core.jobs.runner`` does); it imports no domain package.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from core import engine

ACTOR_PREFIX = "luciddx-job-"


class _JobActor:
    """The job's process: runs one command, then leaves."""

    def where(self) -> dict[str, Any]:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def run(self, args: list[str], stdout_path: str, stderr_path: str) -> int:
        import sys

        import ray

        # The worker is this job's alone (a detached actor): its standard streams become the job's files.
        for stream, path in ((1, stdout_path), (2, stderr_path)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(descriptor, stream)
            os.close(descriptor)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        import runpy

        sys.argv = ["python -m core", *args]
        try:
            runpy.run_module("core", run_name="__main__", alter_sys=True)  # exactly ``python -m core ARGS``
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        ray.actor.exit_actor()
        return code


def actor_name(job_id: str) -> str:
    return ACTOR_PREFIX + job_id


def submit(
    job_id: str, args: list[str], stdout_path: str, stderr_path: str, env: dict[str, str], wants_gpu: bool = False
) -> dict[str, Any]:
    """Start ``python -m core <args>`` as job ``job_id`` on the engine; return where it runs.

    Raises:
        EngineError: the engine cannot be reached, or the job could not be placed.
    """
    import ray

    engine.connect()
    resources = ray.cluster_resources()
    gpus = 1 if wants_gpu and resources.get("GPU", 0) >= 1 else 0  # one GPU where some node has one
    cpus = max(1, int(resources.get("CPU", 1)))
    # Ray gives a one-CPU actor one thread (OMP_NUM_THREADS=1); training uses the node's cores as a process would.
    variables = engine._worker_environment() | env | {"OMP_NUM_THREADS": str(cpus), "PYTHONUNBUFFERED": "1"}
    actor_class = ray.remote(_JobActor).options(
        name=actor_name(job_id),
        lifetime="detached",
        max_restarts=0,
        max_concurrency=2,  # ``where`` answers while ``run`` works
        num_cpus=1,
        num_gpus=gpus,
        runtime_env={"env_vars": variables},
    )
    actor: Any = actor_class.remote()
    actor.run.remote(args, stdout_path, stderr_path)
    try:
        placed: dict[str, Any] = ray.get(actor.where.remote(), timeout=120)
    except Exception as exc:  # noqa: BLE001 - any failure to place the job is reported the same way
        with contextlib.suppress(Exception):
            ray.kill(actor)
        raise engine.EngineError(str(exc)) from exc
    return {"actor": actor_name(job_id), "gpus": gpus, **placed}


def alive(job_id: str) -> bool:
    """Whether the job's actor still exists. True when the engine cannot be asked (nothing is concluded)."""
    import ray

    try:
        engine.connect()
        ray.get_actor(actor_name(job_id))
    except ValueError:
        return False
    except Exception:  # noqa: BLE001 - an unreachable engine is not a dead job
        return True
    return True


def cancel(job_id: str) -> bool:
    """Kill the job's actor (and its process); False when it no longer existed."""
    import ray

    engine.connect()
    try:
        actor = ray.get_actor(actor_name(job_id))
    except ValueError:
        return False
    ray.kill(actor, no_restart=True)
    return True
