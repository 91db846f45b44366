"""The work of a sweep on its Dask workers: one point run as a child run of the sweep run.

:func:`run_point` is the Dask task :func:`fraudkit.sweeps.run.run_sweep` submits for each point.
It runs the notebook through :func:`fraudkit.runner.execution.run_notebook`, and when Dask runs it
again (its worker died) it first looks in the store, so that a point finishes exactly once.
"""

from __future__ import annotations

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

__all__ = ["kill_running", "run_point", "sweep_children"]


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


def run_point(
    notebook: str,
    parameters: dict[str, Any],
    *,
    sweep_run_id: str,
    index: int,
    point: dict[str, Any],
    environment: dict[str, str],
    timeout: float | None,
) -> dict[str, Any]:
    """Run one point of a sweep: the Dask task, executed on a worker.

    The notebook runs through :func:`fraudkit.runner.execution.run_notebook` as a child run of
    the sweep run, tagged with its point. A task Dask runs again (its worker died) first
    looks in the store: a point that already has a FINISHED run is not run twice, and a
    run left RUNNING for it by the dead worker is ended as KILLED.

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
        Environment variables that point the worker at the sweep's tracking store.
    timeout : float, optional
        Per-job budget in seconds.

    Returns
    -------
    dict
        ``run_id``, ``status``, ``error``, ``metrics`` and (for a finished point) its run
        time in ``seconds``: plain data, cheap to send back.
    """
    from fraudkit.runner.execution import run_notebook
    from fraudkit.tracking.manager import mlflow_manager

    # The worker may serve other sweeps and stores: point it at this one before anything.
    os.environ.update(environment)
    client = mlflow_manager.client
    experiment_id = mlflow_manager.experiment_id(notebook)
    # A worker killed after its run ended but before the task returned leaves the point
    # done: Dask reruns the task, which must not run the point twice.
    done = [
        run
        for run in sweep_children(client, experiment_id, sweep_run_id, status="FINISHED")
        if run.data.tags.get(SWEEP_INDEX_TAG) == str(index)
    ]
    if done:
        run = done[-1]
        return {
            "run_id": run.info.run_id,
            "status": "FINISHED",
            "error": None,
            "metrics": dict(run.data.metrics),
            "seconds": ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000,
        }
    # A run left RUNNING for this point is one a killed worker was executing: Dask has
    # rescheduled the task here, so that run is over.
    stale = [
        run
        for run in sweep_children(client, experiment_id, sweep_run_id, status="RUNNING")
        if run.data.tags.get(SWEEP_INDEX_TAG) == str(index)
    ]
    kill_running(client, stale, "interrupted: its worker stopped; the point was run again")
    tags = {
        SWEEP_RUN_TAG: sweep_run_id,
        SWEEP_POINT_TAG: json.dumps(point, sort_keys=True, default=str),
        SWEEP_INDEX_TAG: str(index),
    }
    started = time.perf_counter()
    try:
        run = run_notebook(
            notebook,
            parameters,
            parent_run_id=sweep_run_id,
            tags=tags,
            progress=False,
            job_timeout=timeout,
        )
    except NotebookExecutionError as exc:
        return {"run_id": exc.run_id, "status": "FAILED", "error": str(exc), "metrics": {}}
    except FraudkitError as exc:  # the store, the kernel: nothing ran
        return {"run_id": None, "status": "FAILED", "error": str(exc), "metrics": {}}
    return {
        "run_id": run.run_id,
        "status": run.status,
        "error": None,
        "metrics": run.metrics,
        "seconds": time.perf_counter() - started,
    }
