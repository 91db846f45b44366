"""Parameter sweeps of a notebook on Dask: a grid of runs under one sweep run.

:func:`run_sweep` expands a grid (and/or a list of cases) into points, checks every point
against the notebook's ``parameters`` cell before anything is created, opens a sweep run in
the notebook's experiment and runs each point through :func:`fraudkit.runner.execution.run_notebook`
in a Dask task (:func:`fraudkit.sweeps.worker.run_point`), as a child run
(``mlflow.parentRunId``) tagged with its point. By default the tasks run on a
:class:`distributed.LocalCluster` of one-thread worker processes, which get the points
longest expected first as they free up; an existing scheduler (``scheduler=`` or
``DASK_SCHEDULER_ADDRESS``) takes them to a cluster, whose workers must reach the same
tracking store (a server or a database, not a SQLite file).

Faults: a task marks any run its point left RUNNING (a worker killed mid-job) KILLED before
it starts again, so a rescheduled point finishes once; a failing notebook is recorded as
``run_notebook`` records it and the sweep goes on (``retries`` runs it again); Ctrl-C
cancels the tasks and leaves no run RUNNING; ``resume=`` runs only the points of an earlier
sweep that did not finish. The results table and the sweep report come from
:mod:`fraudkit.sweeps.results`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError, NotebookParameterError
from fraudkit.core.tags import (
    MLFLOW_SOURCE_NAME_TAG,
    SWEEP_EXPERIMENT_TAG,
    SWEEP_FAILED_TAG,
    SWEEP_FINISHED_TAG,
    SWEEP_INDEX_TAG,
    SWEEP_NOTEBOOK_TAG,
    SWEEP_POINTS_TAG,
)
from fraudkit.sweeps import results as sweep_report
from fraudkit.sweeps.results import PointOutcome, SweepResult
from fraudkit.sweeps.spec import (
    SweepSpec,
    distinct,
    expand_points,
    load_sweep_spec,
    longest_first,
    resumed_spec,
    spec_from_mapping,
)
from fraudkit.sweeps.worker import kill_running, run_point, sweep_children

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = [
    "ENV_SCHEDULER",
    "SPEC_ARTIFACT",
    "PointOutcome",
    "SweepResult",
    "SweepSpec",
    "expand_points",
    "load_sweep_spec",
    "run_point",
    "run_points",
    "run_sweep",
    "sweep_children",
]

# On the sweep run, for the report index: the notebook, the number of points, and (set when
# the sweep ends) how many finished and failed.
# The sweep as defined (notebook, grid, cases, shared parameters): what --resume reruns.
SPEC_ARTIFACT = "sweep/spec.json"
ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"

# -- the client side -----------------------------------------------------------------------


def _refuse_unreachable_store(uri: str, scheduler: str) -> None:
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("sqlite", "file", ""):
        raise ConfigurationError(
            f"the tracking store {config.redact_uri(uri)} is a file on this machine, which the "
            f"workers of the Dask cluster at {scheduler} cannot reach; set MLFLOW_TRACKING_URI "
            "to a tracking server (http://host:5000) or a database (postgresql://...) the "
            f"workers reach, or unset {ENV_SCHEDULER} and drop --scheduler to run on a local "
            "cluster"
        )


def _checked_points(spec: SweepSpec) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every point's (varied values, full parameters), checked before any run exists."""
    from fraudkit.runner.parameters import validate_parameters

    checked = []
    for index, point in enumerate(expand_points(spec.grid, spec.cases)):
        try:
            values = validate_parameters(spec.notebook, {**spec.parameters, **point})
        except NotebookParameterError as exc:
            raise NotebookParameterError(
                f"sweep point {index} {json.dumps(point, default=str)}: {exc}; no run was created"
            ) from exc
        checked.append(({k: values[k] for k in point}, values))
    return checked


def _stored_spec(client: MlflowClient, sweep_run_id: str) -> tuple[SweepSpec, Run]:
    import tempfile

    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(sweep_run_id)
        with tempfile.TemporaryDirectory() as folder, sweep_report.quiet_downloads():
            stored = json.loads(
                Path(client.download_artifacts(sweep_run_id, SPEC_ARTIFACT, folder)).read_text()
            )
    except (MlflowException, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"no sweep run {sweep_run_id!r} with its {SPEC_ARTIFACT} in the tracking store; "
            "pass the sweep run id that `fraudkit sweep` printed"
        ) from exc
    if run.data.tags.get(SWEEP_EXPERIMENT_TAG) != "true":
        raise ConfigurationError(f"run {sweep_run_id} is not a sweep run; pass a sweep run's id")
    return spec_from_mapping(stored, SPEC_ARTIFACT), run


@contextlib.contextmanager
def _dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, set_as_default=False) as client:
            yield client
        return
    import dask.config

    # Not the default client (a context variable), so that the sweep can close it from the
    # thread that lets the workers stop while the results are logged.
    # Processes of one thread each: a notebook kernel per worker, no GIL shared between them.
    # No dashboard: its fixed port would clash between sweeps run side by side (None turns it
    # off, though the stubs ask for a string). A worker saturation of 1.0 hands a worker its
    # next point only when it is free: at the default 1.1 each one-thread worker holds a
    # second point in its own queue, and at the end of a sweep one worker can sit idle while
    # the other still has a point waiting behind the one it runs.
    with (
        dask.config.set({"distributed.scheduler.worker-saturation": 1.0}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # pyright: ignore[reportArgumentType]
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _close_in_background(cluster: contextlib.ExitStack) -> threading.Thread:
    """Close the Dask client and cluster in a thread; join it before returning."""
    closing = threading.Thread(target=cluster.close, name="fraudkit-sweep-close", daemon=True)
    closing.start()
    return closing


def run_sweep(
    notebook: str,
    *,
    grid: Mapping[str, Sequence] | None = None,
    cases: Sequence[Mapping] | None = None,
    parameters: Mapping[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 1,
    timeout: float | None = None,
    resume: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run ``notebook`` once per point of a grid, in parallel on Dask, under one sweep run.

    Parameters
    ----------
    notebook : str
        training, model_comparison, ab_testing, monitoring or retraining (with ``resume``,
        may be empty: the sweep run knows its notebook).
    grid : mapping, optional
        Parameter name -> values to try; every combination is a point.
    cases : sequence of mapping, optional
        Explicit parameter sets, combined with each grid point.
    parameters : mapping, optional
        Parameters shared by every point.
    workers : int, optional
        Worker processes of the local cluster; default the machine's CPU count (never more
        than the points to run).
    scheduler : str, optional
        Address of an existing Dask scheduler (default ``DASK_SCHEDULER_ADDRESS``); its
        workers must reach the tracking store, so a SQLite store is refused.
    retries : int
        How many more times a failed point is run.
    timeout : float, optional
        Time budget of each point in seconds; a point over it fails in the running cell.
    resume : str, optional
        Id of an earlier sweep run: reuse it and run only its points that did not finish.
    on_progress : callable, optional
        Called with (points done, points in all) at the start and as each point ends.

    Returns
    -------
    SweepResult
        After Ctrl-C too: then ``interrupted`` is set, the running points' runs are KILLED,
        the points not run are CANCELLED and the sweep run is KILLED.

    Raises
    ------
    NotebookParameterError
        A point's parameters do not fit the notebook; nothing was created.
    ConfigurationError
        A bad grid, a remote scheduler with a SQLite store, an unknown sweep to resume.
    """
    from mlflow.exceptions import MlflowException

    from fraudkit.runner.parameters import notebook_path
    from fraudkit.tracking.manager import mlflow_manager
    from fraudkit.tracking.store import store_error

    manager = mlflow_manager
    client = manager.client
    uri = manager.tracking_uri
    given = SweepSpec(
        notebook,
        {k: list(v) for k, v in (grid or {}).items()},
        [dict(c) for c in cases or []],
        dict(parameters or {}),
    )
    run = None
    if resume:
        stored, run = _stored_spec(client, resume)
        spec = resumed_spec(stored, given, resume)
    else:
        spec = SweepSpec(
            ExperimentType.parse(notebook).value, given.grid, given.cases, given.parameters
        )
    points = _checked_points(spec)
    address = scheduler or os.environ.get(ENV_SCHEDULER) or None
    if address:
        _refuse_unreachable_store(uri, address)
    source = notebook_path(spec.notebook)
    experiment_id = manager.experiment_id(spec.notebook)
    try:
        if run is None:
            run = client.create_run(
                experiment_id,
                run_name=manager.run_name(spec.notebook, "sweep"),
                tags={
                    **manager.run_tags(spec.notebook, "sweep"),
                    SWEEP_EXPERIMENT_TAG: "true",
                    SWEEP_NOTEBOOK_TAG: spec.notebook,
                    SWEEP_POINTS_TAG: str(len(points)),
                    MLFLOW_SOURCE_NAME_TAG: source.name,
                },
            )
            client.log_dict(run.info.run_id, spec.to_dict(), SPEC_ARTIFACT)
            shared = {k: v for k, v in points[0][1].items() if k in spec.parameters}
            grid_params = {  # as the points run them: "1" from the command line is 1
                f"grid.{k}": json.dumps(distinct(p[k] for p, _ in points), default=str)
                for k in spec.grid
            }
            if spec.cases:
                grid_params["cases"] = json.dumps(spec.cases, default=str)
            manager.log_params({**shared, **grid_params}, run_id=run.info.run_id)
        else:
            client.update_run(run.info.run_id, status="RUNNING")
    except MlflowException as exc:
        raise store_error(exc, uri, what="creating the sweep run") from exc
    sweep_run_id = run.info.run_id
    outcomes: dict[int, PointOutcome] = {}
    if resume:
        kill_running(
            client,
            sweep_children(client, experiment_id, sweep_run_id, status="RUNNING"),
            "interrupted: the sweep stopped before the run ended",
        )
        for child in sweep_children(client, experiment_id, sweep_run_id, status="FINISHED"):
            index = int(child.data.tags.get(SWEEP_INDEX_TAG, -1))
            if 0 <= index < len(points):
                outcomes[index] = sweep_report.outcome_of_run(index, points[index][0], child)
    pending = [i for i in range(len(points)) if i not in outcomes]
    environment = {config.ENV_TRACKING_URI: uri}
    if not address:  # local workers share this machine's home; remote ones keep theirs
        environment[config.ENV_HOME] = str(config.fraudkit_home())
        environment[config.ENV_NOTEBOOKS_DIR] = str(config.notebooks_dir())
    interrupted = False
    started = int(time.time() * 1000)
    progress = on_progress or (lambda done, total: None)
    progress(len(outcomes), len(points))
    status = "FAILED"  # until the sweep gets through: its run must not stay RUNNING
    copied: set[int] = set()

    def copy_reports(outcome: PointOutcome) -> None:
        # While the other points run: the copies cost the sweep no wall time at its end.
        sweep_report.copy_run_reports(client, outcome.run_id)
        copied.add(outcome.index)

    cluster = contextlib.ExitStack()
    closing = None
    try:
        try:
            if pending:
                size = min(workers or os.cpu_count() or 1, len(pending))
                with cluster:
                    dask = cluster.enter_context(_dask_client(address, size))
                    interrupted = run_points(
                        dask, spec, points, pending, outcomes,
                        sweep_run_id=sweep_run_id, environment=environment,
                        retries=retries, timeout=timeout, progress=progress,
                        ended=copy_reports, slots=None if address else size,
                    )  # fmt: skip
                    if not interrupted:
                        # The workers take a second or two to stop: let them while the
                        # results are logged. After Ctrl-C, or on an exception, the cluster
                        # closes here, before the runs it held are marked KILLED.
                        closing = _close_in_background(cluster.pop_all())
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            kill_running(
                client,
                sweep_children(client, experiment_id, sweep_run_id, status="RUNNING"),
                "interrupted: the sweep was cancelled (Ctrl-C)",
            )
        _fill_missing_outcomes(client, experiment_id, sweep_run_id, points, outcomes, started)
        ordered = [outcomes[i] for i in range(len(points))]
        for outcome in ordered:
            if outcome.index not in copied:  # resumed, interrupted or cancelled points
                copy_reports(outcome)
        table = sweep_report.results_table(ordered)
        report = sweep_report.log_results(client, run, spec.notebook, table)
        finished = sum(o.status == "FINISHED" for o in ordered)
        client.set_tag(sweep_run_id, SWEEP_FINISHED_TAG, str(finished))
        client.set_tag(sweep_run_id, SWEEP_FAILED_TAG, str(len(ordered) - finished))
        status = "KILLED" if interrupted else "FINISHED" if finished == len(ordered) else "FAILED"
    finally:
        if closing is not None:
            closing.join()
        client.set_terminated(sweep_run_id, status)
    return SweepResult(sweep_run_id, spec.notebook, ordered, table, report, interrupted)


def _fill_missing_outcomes(
    client: MlflowClient,
    experiment_id: str,
    sweep_run_id: str,
    points: list[tuple[dict[str, Any], dict[str, Any]]],
    outcomes: dict[int, PointOutcome],
    since_ms: int,
) -> None:
    """Fill in the points without an outcome: from their runs of this session, else CANCELLED."""
    latest: dict[int, Run] = {}
    for child in sweep_children(client, experiment_id, sweep_run_id):
        if child.info.start_time >= since_ms:
            latest[int(child.data.tags.get(SWEEP_INDEX_TAG, -1))] = child  # oldest first: last wins
    for index, (point, _) in enumerate(points):
        if index in outcomes:
            continue
        child = latest.get(index)
        outcomes[index] = (
            sweep_report.outcome_of_run(index, point, child)
            if child is not None
            else PointOutcome(index, point, None, "CANCELLED")
        )


def run_points(
    dask: Any,
    spec: SweepSpec,
    points: list[tuple[dict[str, Any], dict[str, Any]]],
    pending: list[int],
    outcomes: dict[int, PointOutcome],
    *,
    sweep_run_id: str,
    environment: dict[str, str],
    retries: int,
    timeout: float | None,
    progress: Callable[[int, int], None],
    ended: Callable[[PointOutcome], None],
    slots: int | None,
) -> bool:
    """Run the pending points of a sweep as Dask tasks (:func:`run_point`) and collect them.

    With ``slots`` (a local cluster of that many workers) the client holds the points back
    and hands one over each time a worker frees up, longest expected first
    (:func:`fraudkit.sweeps.spec.longest_first`). Without (an existing cluster, which may
    scale with the work it is given), every point is submitted at once, in grid order.

    Parameters
    ----------
    dask : distributed.Client
        The client of the cluster the points run on.
    spec : SweepSpec
        The sweep.
    points : list of (dict, dict)
        Every point's varied values and full parameters, by index.
    pending : list of int
        The indices to run.
    outcomes : dict
        Index -> :class:`PointOutcome`, filled in as the points end.
    sweep_run_id, environment, timeout
        As :func:`run_point` takes them.
    retries : int
        How many more times a failed point is run.
    progress : callable
        Called with (points done, points in all) as each point ends.
    ended : callable
        Called with each point's final outcome as it arrives.
    slots : int, optional
        Points to hand out at a time; None submits them all.

    Returns
    -------
    bool
        True when Ctrl-C stopped it (the submitted tasks are cancelled).
    """
    from distributed import as_completed

    attempts = dict.fromkeys(pending, 0)
    futures: list[Any] = []
    index_of: dict[str, int] = {}
    waiting = list(pending)
    seconds: dict[int, float] = {}  # run times of the finished points, to order the rest

    def submit(index: int) -> Any:
        point, values = points[index]
        future = dask.submit(
            run_point,
            spec.notebook,
            values,
            sweep_run_id=sweep_run_id,
            index=index,
            point=point,
            environment=environment,
            timeout=timeout,
            key=f"fraudkit-sweep-{sweep_run_id}-{index}-{attempts[index]}",
            pure=False,
        )
        futures.append(future)
        index_of[future.key] = index
        return future

    varied = [point for point, _ in points]

    def submit_next() -> Any:
        index = longest_first(waiting, varied, seconds)[0]
        waiting.remove(index)
        return submit(index)

    first = [submit_next() for _ in range(min(slots or len(waiting), len(waiting)))]
    queue = as_completed(first, loop=dask.loop)
    try:
        for future in queue:
            index = index_of[future.key]
            try:
                done = future.result()
            except Exception as exc:  # the task itself broke (e.g. its worker kept dying)
                done = {"run_id": None, "status": "FAILED", "error": str(exc), "metrics": {}}
            if done["status"] != "FINISHED" and attempts[index] < retries:
                attempts[index] += 1
                queue.add(submit(index))
                continue
            if done["status"] == "FINISHED" and done.get("seconds") is not None:
                seconds[index] = done["seconds"]
            if waiting:
                queue.add(submit_next())
            point = points[index][0]
            outcomes[index] = PointOutcome(
                index, point, done["run_id"], done["status"], done["error"], done["metrics"]
            )
            progress(len(outcomes), len(points))
            ended(outcomes[index])
    except KeyboardInterrupt:
        dask.cancel(futures, force=True)
        return True
    return False
