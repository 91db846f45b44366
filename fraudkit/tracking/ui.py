"""The MLflow UI as the kit opens it: machine-learning-view links and a supervised server.

MLflow 3's UI shows an experiment in one of two views. The GenAI view (traces, judges,
prompts, runs as "Evaluation runs") is the default; the "Model training" view (runs,
models, the registry) is what fraud work needs. The UI (3.17's bundle) picks the view
from, in order:

1. the ``workflowType`` query parameter of the hash route, e.g.
   ``http://host:5000/#/experiments/3?workflowType=machine_learning``;
2. the browser's memory: ``localStorage["mlflow.workflowType"]``, written only when the
   user flips the view switch in the side bar, and ``genai`` until then.

The experiment tag ``mlflow.experimentKind`` (``custom_model_development`` is the
machine-learning kind, ``genai_development`` the GenAI one) is what the UI shows and sets
as the experiment's kind; with the view switch on, as in 3.17, the view follows the
workflow type above. So every link the kit prints or renders carries
``workflowType=machine_learning`` (:mod:`fraudkit.tracking.links`), and the kit
also tags its experiments with the machine-learning kind (:mod:`fraudkit.tracking.manager`) so
that the store itself says what they are.

``fraudkit ui`` runs ``mlflow server`` through :func:`server_command` and
:func:`run_server`: without MLflow's GenAI job runner (its huey worker processes) unless
the user set ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``, in a process group of its own so that
a SIGTERM or Ctrl+C stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from fraudkit.core.exceptions import ConfigurationError
from fraudkit.tracking.links import experiment_url

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "JOB_EXECUTION_ENV",
    "ServerExit",
    "kit_experiment_urls",
    "run_server",
    "server_command",
    "server_url",
]

#: MLflow's switch for its background job runner (huey workers; on by default).
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"

# Signals that mean "stop" -> what the server is sent: a supervisor or `kill` (TERM) and
# Ctrl+C (INT) as they are; a closed terminal (HUP) as TERM, since uvicorn's multi-worker
# supervisor reads HUP as "reload".
_STOP_SIGNALS: dict[int, int] = {
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGINT,
    signal.SIGHUP: signal.SIGTERM,
}


def kit_experiment_urls(
    base_url: str, manager: MlflowManager | str | None = None
) -> dict[str, str]:
    """Return ``{experiment name: ML-view link}`` for the kit's five experiments.

    The experiments are looked up on the kit's tracking store through
    :meth:`fraudkit.tracking.manager.MlflowManager.setup_experiments`, which creates, restores or
    tags (:data:`EXPERIMENT_KIND_TAG`) them as needed.

    Parameters
    ----------
    base_url : str
        The address the UI serves the store on.
    manager : MlflowManager or str, optional
        The store (a manager or a tracking URI); default the shared manager.

    Raises
    ------
    TrackingError
        If the store cannot be read or written.
    """
    # Imported here: MLflow takes seconds to import and the links are only built on demand.
    from fraudkit.core.config import ExperimentType
    from fraudkit.tracking.manager import resolve_manager

    ids = resolve_manager(manager).setup_experiments()
    return {
        ExperimentType(kind).experiment_name: experiment_url(base_url, experiment_id)
        for kind, experiment_id in ids.items()
    }


def server_url(host: str, port: int) -> str:
    """Return the address a browser on this machine opens for a server bound to ``host``.

    A wildcard bind (``0.0.0.0``, ``::`` or empty) is reached on the loopback address;
    IPv6 literals get their brackets.
    """
    name = str(host).strip().strip("[]")
    if name in ("", "0.0.0.0"):
        name = "127.0.0.1"
    elif name == "::":
        name = "::1"
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{int(port)}"


def server_command(
    host: str,
    port: int,
    store_uri: str,
    artifact_root: str | None = None,
    *,
    workers: int = 1,
    environ: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Return the ``mlflow server`` command line and environment for ``fraudkit ui``.

    Parameters
    ----------
    host, port : str, int
        Address to bind.
    store_uri : str
        The backend store; passed in the environment, not on the command line, because
        it may hold a database password and ``ps`` shows command lines to every user.
    artifact_root : str, optional
        Artifact location of experiments the server creates.
    workers : int
        Uvicorn worker processes (one serves a single user well).
    environ : mapping, optional
        The environment to start from (default: this process's).

    Returns
    -------
    tuple of (list of str, dict)
        The command and the full environment of the server process. MLflow's job runner
        (GenAI features the kit does not use) is disabled unless ``environ`` sets
        :data:`JOB_EXECUTION_ENV` itself.

    Raises
    ------
    ConfigurationError
        If ``port`` or ``workers`` is out of range.
    """
    if not 0 < int(port) < 65536:
        raise ConfigurationError(f"port {port} is out of range; pick one in 1-65535")
    if int(workers) < 1:
        raise ConfigurationError(f"workers={workers}; the server needs at least 1")
    env = dict(os.environ if environ is None else environ)
    env["MLFLOW_BACKEND_STORE_URI"] = store_uri
    if artifact_root:
        env["MLFLOW_DEFAULT_ARTIFACT_ROOT"] = artifact_root
    env.setdefault(JOB_EXECUTION_ENV, "false")
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--host", host, "--port", str(int(port)), "--workers", str(int(workers))),
    ]
    return command, env


@dataclass(frozen=True)
class ServerExit:
    """How a supervised server ended.

    Attributes
    ----------
    returncode : int
        The server process's own exit status (negative: killed by that signal).
    stop_signal : int or None
        The signal that asked the supervisor to stop, if one did.
    forced : bool
        Whether processes of the server's group had to be killed with SIGKILL.
    """

    returncode: int
    stop_signal: int | None
    forced: bool

    @property
    def exit_code(self) -> int:
        """The exit status for the supervisor: 0 after a requested stop, else the server's.

        A server that died by signal ``N`` on its own maps to ``128 + N``, as shells do.
        """
        if self.stop_signal is not None:
            return 0
        return 128 - self.returncode if self.returncode < 0 else self.returncode

    def to_dict(self) -> dict:
        """Return the fields and :attr:`exit_code` as a plain dict."""
        return {
            "returncode": self.returncode,
            "stop_signal": self.stop_signal,
            "forced": self.forced,
            "exit_code": self.exit_code,
        }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member exists but changed user
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _drain_group(pgid: int, grace: float) -> bool:
    """TERM what is left of the group, KILL it after ``grace`` s; True if KILL was needed."""
    if not _group_alive(pgid):
        return False
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return False
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)
    return True


def run_server(
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    grace: float = 10.0,
) -> ServerExit:
    """Run ``command`` in a new session and stop all of it on SIGTERM, SIGINT or SIGHUP.

    The server runs in its own session (hence process group), so the terminal's Ctrl+C
    does not reach its workers behind its back and all it spawns can be found again. A
    stop signal received here goes to the server process, which shuts its workers down in
    order (``mlflow server`` passes it on to uvicorn); a second one kills the whole group,
    and so does a server still running ``grace`` seconds after the first. Once the server
    process has exited, by request or on its own, whatever is left of its group gets
    SIGTERM and, ``grace`` seconds later, SIGKILL: no orphan keeps the port.

    Parameters
    ----------
    command : sequence of str
        The server command (see :func:`server_command`).
    env : mapping, optional
        Its environment (default: this process's).
    grace : float
        Seconds the group has to stop after SIGTERM before it is killed.

    Returns
    -------
    ServerExit
        How the server ended; ``exit_code`` is the status to exit with.

    Notes
    -----
    Installs signal handlers, so call it from the main thread; the previous handlers are
    restored on return.
    """
    requested: list[int] = []
    stop_since: list[float] = []
    child: subprocess.Popen | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        requested.append(signum)
        if not stop_since:
            stop_since.append(time.monotonic())
        if child is None:
            return  # forwarded once the server has started
        if len(requested) > 1:  # asked twice: no more waiting
            _signal_group(child.pid, signal.SIGKILL)
        else:
            # Popen.send_signal does nothing once the server has been reaped, so a pid the
            # system gave to another process meanwhile is never signalled.
            child.send_signal(_STOP_SIGNALS[signum])

    # Handlers go in before the server starts, so a signal that arrives while it starts is
    # forwarded, not lost.
    previous = {signum: signal.signal(signum, on_signal) for signum in _STOP_SIGNALS}
    try:
        child = subprocess.Popen(
            list(command), env=dict(env) if env is not None else None, start_new_session=True
        )
        if requested:  # a stop signal came before the server existed
            child.send_signal(_STOP_SIGNALS[requested[0]])
        forced = False
        while True:
            try:
                returncode = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop_since and not forced and time.monotonic() - stop_since[0] > grace:
                _signal_group(child.pid, signal.SIGKILL)
                forced = True
        forced = _drain_group(child.pid, grace) or forced
        return ServerExit(
            returncode=returncode,
            stop_signal=requested[0] if requested else None,
            forced=forced,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
