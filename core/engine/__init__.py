"""Where work runs: Ray, on this machine by default, or the cluster ``LUCIDDX_RAY_ADDRESS`` names.

    LUCIDDX_RAY_ADDRESS unset  the machine's own Ray head: started on first use by whichever process
                               needs it (``ray start --head``, no dashboard, no usage reporting, token
                               authentication, listening on 127.0.0.1 only) and joined by every other
                               LucidDx process of this LUCIDDX_HOME. It outlives the process that
                               started it, so a training job outlives the dashboard that started it;
                               ``python -m core engine stop`` stops it.
    LUCIDDX_RAY_ADDRESS=H:P    this process joins the running cluster whose head is H:P

The same code runs either way: callers ask :func:`connect` and submit Ray tasks or actors. Every node of
a cluster needs this project at the same path and the same LUCIDDX_HOME (a shared mount): the workers
import ``core`` from there and read the registry and site thresholds (docs/deploy.md).

The machine's head is recorded in ``LUCIDDX_RAY_DIR`` (default ``$LUCIDDX_HOME/ray``): ``head.json``
(address, pid), ``head.lock`` (one starter at a time), ``head.log`` and ``auth_token`` (0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from core import config
from core.errors import LucidDxError
from core.i18n import _

ADDRESS_VARIABLE = "LUCIDDX_RAY_ADDRESS"
DIR_VARIABLE = "LUCIDDX_RAY_DIR"
HEAD_START_SECONDS = 90.0
# Ray reports usage to its developers unless told not to; an air-gapped hospital server never phones home.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
_LOCK = threading.Lock()


class EngineError(LucidDxError):
    """The Ray engine could not be started or reached."""


def address() -> str | None:
    """The cluster to join (``HOST:PORT`` of its head), or None for the embedded engine."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or None


def ray_dir() -> Path:
    """Where this machine's head is recorded (``LUCIDDX_RAY_DIR``, default ``$LUCIDDX_HOME/ray``)."""
    return Path(os.environ.get(DIR_VARIABLE) or config.luciddx_home() / "ray")


def _worker_environment() -> dict[str, str]:
    # The caller's LUCIDDX_* settings (home, database, language) hold in its workers too; but a worker does
    # its work where it is: it neither joins an engine nor hands films to a served model.
    settings = {
        key: value
        for key, value in os.environ.items()
        if key.startswith("LUCIDDX_") and key not in (ADDRESS_VARIABLE, DIR_VARIABLE)
    }
    return settings | {
        "PYTHONPATH": str(config.PROJECT_ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LUCIDDX_HOME": str(config.luciddx_home()),
        "LUCIDDX_SERVE": "off",
    }


def _use_token(folder: Path) -> None:
    """Token authentication for the machine's head: the token lives in ``folder`` (0600), never in a log."""
    token = folder / "auth_token"
    if not token.exists():
        descriptor = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    if os.environ.get("RAY_AUTH_TOKEN_PATH") == str(token) and os.environ.get("RAY_AUTH_MODE") == "token":
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    os.environ.pop("RAY_AUTH_TOKEN", None)
    # Ray reads its configuration and the token once, at import: make it read them again.
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _answers(address: str) -> bool:
    host, _sep, port = address.rpartition(":")
    with contextlib.suppress(OSError, ValueError), socket.create_connection((host, int(port)), timeout=2):
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _recorded_head(folder: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        head = json.loads((folder / "head.json").read_text())
        if _pid_alive(int(head["pid"])) and _answers(head["address"]):
            return head
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_head(num_cpus: int | None = None) -> str:
    """The address of this machine's head, started here (and left running) when none answers.

    Raises:
        EngineError: Ray could not start a head on this machine (its log is named).
    """
    folder = ray_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _use_token(folder)
    with open(folder / "head.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once make one head
        head = _recorded_head(folder)
        if head is not None:
            return str(head["address"])
        port = _free_port()
        ray = Path(sys.executable).with_name("ray")
        command = [
            str(ray) if ray.exists() else "ray",
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            str(num_cpus or os.cpu_count() or 1),
            "--include-dashboard=false",
            "--disable-usage-stats",
        ]
        # The head serves every LucidDx process of the machine: none of this caller's settings belong to it.
        env = {key: value for key, value in os.environ.items() if not key.startswith("LUCIDDX_")}
        env |= {"RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(config.PROJECT_ROOT)}
        with open(folder / "head.log", "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=config.PROJECT_ROOT,
                start_new_session=True,
            )
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + HEAD_START_SECONDS
        while not _answers(address):
            if process.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                raise EngineError(
                    _("Ray could not start on this machine; its log is {log}.").format(log=folder / "head.log")
                )
            time.sleep(0.3)
        time.sleep(1.0)  # the GCS answers before the node has registered with it
        write = folder / "head.json.tmp"
        write.write_text(json.dumps({"address": address, "pid": process.pid, "started": time.time()}))
        write.replace(folder / "head.json")
        return address


def stop_local_head(timeout: float = 10.0) -> bool:
    """Stop this machine's head (and every job and replica on it); False when none was running."""
    folder = ray_dir()
    shutdown()
    with contextlib.suppress(OSError, ValueError):
        head = json.loads((folder / "head.json").read_text())
        pid = int(head["pid"])
        if _pid_alive(pid):
            # Ray drains for up to 30 s on SIGTERM: it gets ``timeout``, then SIGKILL.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            (folder / "head.json").unlink(missing_ok=True)
            return True
    return False


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
            # Always a named address: with none, Ray would join whatever Ray it finds on the machine.
            ray.init(address=target or local_head(num_cpus), **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = target or _("this machine")
            raise EngineError(
                _(
                    "The Ray engine on {where} could not be reached or started ({reason}). Check that "
                    "its head is running ('ray start --head') and that {variable} names it."
                ).format(where=where, reason=type(exc).__name__, variable=ADDRESS_VARIABLE)
            ) from exc


def embedded() -> bool:
    """Whether the engine is this machine's own head (no cluster named)."""
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
