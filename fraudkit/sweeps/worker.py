"""The work of a sweep on its Dask workers: one point run as a child run of the sweep run.

:func:`run_point` is the Dask task :func:`fraudkit.sweeps.run.run_sweep` submits for each point.
It runs the notebook through :func:`fraudkit.runner.execution.run_notebook`, and when Dask runs it
again (its worker died) it first looks in the store, so that a point finishes exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraudkit.core.exceptions import FraudkitError, NotebookExecutionError
from fraudkit.core.tags import (
    ERROR_TAG,
    SWEEP_INDEX_TAG,
    SWEEP_POINT_TAG,
    SWEEP_RUN_TAG,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = ["ENV_SWEEP_RUN", "end_sweep_processes", "kill_running", "run_point", "sweep_children"]

# Set on the workers of a sweep's own local cluster (the id of its sweep run) and inherited
# by every process they start, the notebook kernels included, whatever their session: after
# Ctrl-C the sweep finds and ends them by it (:func:`end_sweep_processes`).
ENV_SWEEP_RUN = "FRAUDKIT_SWEEP_RUN_ID"


def sweep_children(
    client: MlflowClient, experiment_id: str, sweep_run_id: str, *, status: str | None = None
) -> list[Run]:
    """Return the child runs of a sweep, oldest first, optionally only those in ``status``."""
    from fraudkit.tracking.store import paged, quote

    query = f"tags.`{SWEEP_RUN_TAG}` = {quote(sweep_run_id)}"
    if status:
        query += f" and attributes.status = {quote(status)}"
    return list(
        paged(
            client.search_runs,
            experiment_ids=[experiment_id],
            filter_string=query,
            order_by=["attributes.start_time ASC"],
        )
    )


def kill_running(client: MlflowClient, runs: Sequence[Run], why: str) -> None:
    """End ``runs`` (left RUNNING by a dead worker or a cancelled sweep) KILLED, saying why."""
    for run in runs:
        client.set_tag(run.info.run_id, ERROR_TAG, why)
        client.set_terminated(run.info.run_id, "KILLED")


def end_sweep_processes(sweep_run_id: str, timeout: float = 30) -> list[int]:
    """SIGKILL every process on this machine marked as working for the sweep; wait for them.

    The workers of a sweep's local cluster put ``ENV_SWEEP_RUN`` in their environment (see
    :func:`run_point`), and the Jupyter kernels they start inherit it. A kernel runs in a
    session of its own, so closing the cluster leaves it behind: it keeps executing its cell
    (which may resume the point's run, setting it RUNNING again) for up to a second or so,
    until it notices that its parent is gone.

    Parameters
    ----------
    sweep_run_id : str
        The sweep whose processes to end.
    timeout : float
        Seconds to wait for them to end.

    Returns
    -------
    list of int
        Ids of the processes still alive at the deadline (empty when all ended).
    """
    import psutil

    mark = {ENV_SWEEP_RUN: sweep_run_id}.items()
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        # Gone meanwhile, another user's, or a zombie: nothing to end.
        with contextlib.suppress(psutil.Error):
            if mark <= process.environ().items():
                process.kill()
                found.append(process)
    deadline = time.monotonic() + timeout
    alive = found
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _is_alive(p)]
        if alive:
            time.sleep(0.05)
    return [p.pid for p in alive]


def _is_alive(process: Any) -> bool:
    """Whether ``process`` (a :class:`psutil.Process`) still runs."""
    import psutil

    try:  # a zombie is dead: it only waits to be reaped by its (new) parent
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _outcome(
    run_id: str | None, status: str, error: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A task's result: plain data, cheap to send back."""
    return {"run_id": run_id, "status": status, "error": error, "metrics": {}, **extra}


def _finished_before(
    client: MlflowClient, experiment_id: str, sweep_run_id: str, index: int
) -> dict[str, Any] | None:
    """The outcome of the point's FINISHED run, when an earlier try of the task left one."""
    done = [
        run
        for run in sweep_children(client, experiment_id, sweep_run_id, status="FINISHED")
        if run.data.tags.get(SWEEP_INDEX_TAG) == str(index)
    ]
    if not done:
        return None
    run = done[-1]
    seconds = ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000
    return {**_outcome(run.info.run_id, "FINISHED"), "metrics": dict(run.data.metrics),
            "seconds": seconds}  # fmt: skip


def _end_stale_runs(
    client: MlflowClient, experiment_id: str, sweep_run_id: str, index: int
) -> None:
    """End KILLED the runs a killed worker left RUNNING for the point."""
    # Dask has rescheduled the task here, so such a run is over.
    stale = [
        run
        for run in sweep_children(client, experiment_id, sweep_run_id, status="RUNNING")
        if run.data.tags.get(SWEEP_INDEX_TAG) == str(index)
    ]
    kill_running(client, stale, "interrupted: its worker stopped; the point was run again")


def run_point(
    notebook: str,
    parameters: dict[str, Any],
    *,
    sweep_run_id: str,
    index: int,
    point: dict[str, Any],
    environment: dict[str, str],
    timeout: float | None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Run one point of a sweep: the Dask task, executed on a worker.

    The notebook runs through :func:`fraudkit.runner.execution.run_notebook` as a child run of
    the sweep run, tagged with its point. A task Dask runs again (its worker died) first
    looks in the store: a point that already has a FINISHED run is not run twice, and a
    run left RUNNING for it by the dead worker is ended as KILLED. A task that starts once
    the sweep run has ended (the sweep was cancelled) creates no run.

    Parameters
    ----------
    notebook : str
        Experiment type or notebook name, as :func:`run_sweep` takes it.
    parameters : dict
        The point's full parameter set (shared parameters and the point's values).
    sweep_run_id : str
        The sweep run the point's run is a child of.
    index : int
        The point's position in the sweep.
    point : dict
        The point's own values, recorded as a tag.
    environment : dict
        Environment variables set on the worker before anything else: the sweep's tracking
        store and home, and on a local cluster ``ENV_SWEEP_RUN`` (inherited by the kernel).
    timeout : float, optional
        Per-job budget in seconds.
    tracking_uri : str, optional
        The sweep's tracking store; default the one ``environment`` (else the worker's own
        environment) names.

    Returns
    -------
    dict
        ``run_id``, ``status``, ``error``, ``metrics`` and (for a finished point) its run
        time in ``seconds``: plain data, cheap to send back.
    """
    from fraudkit.runner.execution import run_notebook
    from fraudkit.tracking.manager import resolve_manager

    # The worker may serve other sweeps and stores: point it at this one before anything.
    os.environ.update(environment)
    # None: the shared manager, on the store the environment just set names.
    store = resolve_manager(tracking_uri)
    client = store.client
    experiment_id = store.experiment_id(notebook)
    # A worker killed after its run ended but before the task returned leaves the point
    # done: Dask reruns the task, which must not run the point twice.
    done = _finished_before(client, experiment_id, sweep_run_id, index)
    if done is not None:
        return done
    _end_stale_runs(client, experiment_id, sweep_run_id, index)
    # Ctrl-C ends the sweep run before it closes the cluster: a task still starting then
    # (a force-cancelled task keeps running on its thread) creates no run at all.
    if client.get_run(sweep_run_id).info.status != "RUNNING":
        return _outcome(None, "CANCELLED", "the sweep was cancelled before the point ran")
    tags = {
        SWEEP_RUN_TAG: sweep_run_id,
        SWEEP_POINT_TAG: json.dumps(point, sort_keys=True, default=str),
        SWEEP_INDEX_TAG: str(index),
    }
    started = time.perf_counter()
    try:
        run = run_notebook(notebook, parameters, parent_run_id=sweep_run_id, tags=tags,
                           progress=False, job_timeout=timeout, manager=store)  # fmt: skip
    except NotebookExecutionError as exc:
        return _outcome(exc.run_id, "FAILED", str(exc))
    except FraudkitError as exc:  # the store, the kernel: nothing ran
        return _outcome(None, "FAILED", str(exc))
    return {**_outcome(run.run_id, run.status), "metrics": run.metrics,
            "seconds": time.perf_counter() - started}  # fmt: skip
