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
from collections.abc import Callable, Mapping, Sequence
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
from fraudkit.runner.cluster import dask_client
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
from fraudkit.sweeps.worker import (
    ENV_SWEEP_RUN,
    end_sweep_processes,
    kill_running,
    run_point,
    sweep_children,
)
from fraudkit.tracking.store import quiet_downloads

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from fraudkit.tracking.manager import MlflowManager

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
        with tempfile.TemporaryDirectory() as folder, quiet_downloads():
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


def _close_in_background(cluster: contextlib.ExitStack) -> threading.Thread:
    """Close the Dask client and cluster in a thread; join it before returning."""
    closing = threading.Thread(target=cluster.close, name="fraudkit-sweep-close", daemon=True)
    closing.start()
    return closing


def _sweep_spec(
    client: MlflowClient, given: SweepSpec, resume: str | None
) -> tuple[SweepSpec, Run | None]:
    """The sweep to run: ``given``, or the stored sweep ``resume`` names (and its run)."""
    if resume:
        stored, run = _stored_spec(client, resume)
        return resumed_spec(stored, given, resume), run
    notebook = ExperimentType.parse(given.notebook).value
    return SweepSpec(notebook, given.grid, given.cases, given.parameters), None


def _open_sweep_run(
    store: MlflowManager,
    spec: SweepSpec,
    points: list[tuple[dict[str, Any], dict[str, Any]]],
    run: Run | None,
) -> Run:
    """Create the sweep run with its tags, spec and params, or set a resumed one RUNNING."""
    from mlflow.exceptions import MlflowException

    from fraudkit.runner.parameters import notebook_path
    from fraudkit.tracking.store import store_error

    client = store.client
    try:
        if run is not None:
            client.update_run(run.info.run_id, status="RUNNING")
            return run
        run = client.create_run(
            store.experiment_id(spec.notebook),
            run_name=store.run_name(spec.notebook, "sweep"),
            tags={
                **store.run_tags(spec.notebook, "sweep"),
                SWEEP_EXPERIMENT_TAG: "true",
                SWEEP_NOTEBOOK_TAG: spec.notebook,
                SWEEP_POINTS_TAG: str(len(points)),
                MLFLOW_SOURCE_NAME_TAG: notebook_path(spec.notebook).name,
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
        store.log_params({**shared, **grid_params}, run_id=run.info.run_id)
    except MlflowException as exc:
        raise store_error(exc, store.tracking_uri, what="creating the sweep run") from exc
    return run


def _resumed_outcomes(
    client: MlflowClient,
    experiment_id: str,
    sweep_run_id: str,
    points: list[tuple[dict[str, Any], dict[str, Any]]],
) -> dict[int, PointOutcome]:
    """End the runs an earlier session left RUNNING; the outcomes of its finished points."""
    kill_running(
        client,
        sweep_children(client, experiment_id, sweep_run_id, status="RUNNING"),
        "interrupted: the sweep stopped before the run ended",
    )
    outcomes: dict[int, PointOutcome] = {}
    for child in sweep_children(client, experiment_id, sweep_run_id, status="FINISHED"):
        index = int(child.data.tags.get(SWEEP_INDEX_TAG, -1))
        if 0 <= index < len(points):
            outcomes[index] = sweep_report.outcome_of_run(index, points[index][0], child)
    return outcomes


def _worker_environment(uri: str, sweep_run_id: str, *, local: bool) -> dict[str, str]:
    """What a worker sets in its environment before it runs a point of the sweep."""
    environment = {config.ENV_TRACKING_URI: uri}
    if local:  # local workers share this machine's home; remote ones keep theirs
        environment[config.ENV_HOME] = str(config.fraudkit_home())
        environment[config.ENV_NOTEBOOKS_DIR] = str(config.notebooks_dir())
        # Only the sweep's own cluster is marked: after Ctrl-C whatever carries the mark
        # is killed, and a remote cluster's workers may well run on this machine too.
        environment[ENV_SWEEP_RUN] = sweep_run_id
    return environment


def _run_on_cluster(
    client: MlflowClient,
    address: str | None,
    workers: int | None,
    spec: SweepSpec,
    points: list[tuple[dict[str, Any], dict[str, Any]]],
    pending: list[int],
    outcomes: dict[int, PointOutcome],
    **options: Any,
) -> tuple[bool, threading.Thread | None]:
    """Run the pending points on a cluster (:func:`run_points` takes ``options``).

    Returns whether Ctrl-C stopped the sweep, and the thread closing the cluster when it
    did not (join it). After Ctrl-C the sweep run is ended KILLED, then the cluster is
    closed (its worker processes stopped) before this returns.
    """
    size = min(workers or os.cpu_count() or 1, len(pending))
    cluster = contextlib.ExitStack()
    try:
        with cluster:
            dask = cluster.enter_context(dask_client(address, size))
            if not run_points(
                dask, spec, points, pending, outcomes, slots=None if address else size, **options
            ):
                # The workers take a second or two to stop: let them while the results
                # are logged. After Ctrl-C, or on an exception, the cluster closes here,
                # before the runs it held are marked KILLED.
                return False, _close_in_background(cluster.pop_all())
            # A cancelled task keeps running on its worker's thread until the worker stops;
            # one still starting sees the sweep run ended and creates no run (run_point).
            client.set_terminated(options["sweep_run_id"], "KILLED")
    except KeyboardInterrupt:
        pass
    return True, None


def _end_interrupted(
    client: MlflowClient, experiment_id: str, sweep_run_id: str, *, local: bool
) -> None:
    """After Ctrl-C, with the cluster closed: end KILLED every run of the sweep still RUNNING.

    With ``local`` (the sweep's own cluster) the processes its workers left first.
    """
    # The windows this closes: a point's run is set RUNNING by its worker (create_run) and
    # again by the notebook's kernel (which resumes it with mlflow.start_run). A scan for
    # RUNNING runs made while either may still act misses a run created or resumed after it:
    # a force-cancelled task keeps running on its worker's thread until the worker is
    # stopped, and a kernel, in a session of its own, outlives its stopped worker until it
    # notices (about a second, more on a busy machine), resuming its run meanwhile. So the
    # scan comes last, once nothing of the sweep is left to act: the workers are stopped
    # (closing the cluster joins their processes), then every process still marked with the
    # sweep run (the kernels) is killed and waited for. A process killed while creating or
    # resuming a run has either committed it (found here) or not (on a tracking server, a
    # request already sent is served within milliseconds, long before the scan).
    # A remote cluster's workers cannot be stopped from here: a point they already run ends
    # its run itself, and one still starting finds the sweep run KILLED and creates none
    # (short of a start between its check and the scan).
    if local:
        end_sweep_processes(sweep_run_id)
    kill_running(
        client,
        sweep_children(client, experiment_id, sweep_run_id, status="RUNNING"),
        "interrupted: the sweep was cancelled (Ctrl-C)",
    )


def _record_results(
    client: MlflowClient,
    run: Run,
    spec: SweepSpec,
    outcomes: list[PointOutcome],
    ended: Callable[[PointOutcome], None],
    copied: set[int],
) -> tuple[Any, Path | None, int]:
    """Copy the reports not copied yet, log the table and the report; (table, report, finished)."""
    for outcome in outcomes:
        if outcome.index not in copied:  # resumed, interrupted or cancelled points
            ended(outcome)
    table = sweep_report.results_table(outcomes)
    report = sweep_report.log_results(client, run, spec.notebook, table)
    finished = sum(o.status == "FINISHED" for o in outcomes)
    client.set_tag(run.info.run_id, SWEEP_FINISHED_TAG, str(finished))
    client.set_tag(run.info.run_id, SWEEP_FAILED_TAG, str(len(outcomes) - finished))
    return table, report, finished


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
    manager: MlflowManager | str | None = None,
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
    manager : MlflowManager or str, optional
        The tracking store (a manager or a tracking URI); default the shared manager. The
        workers get its tracking URI.

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
    from fraudkit.tracking.manager import resolve_manager

    store = resolve_manager(manager)
    client, uri = store.client, store.tracking_uri
    given = SweepSpec(
        notebook,
        {k: list(v) for k, v in (grid or {}).items()},
        [dict(c) for c in cases or []],
        dict(parameters or {}),
    )
    spec, run = _sweep_spec(client, given, resume)
    points = _checked_points(spec)
    address = scheduler or os.environ.get(ENV_SCHEDULER) or None
    if address:
        _refuse_unreachable_store(uri, address)
    experiment_id = store.experiment_id(spec.notebook)
    run = _open_sweep_run(store, spec, points, run)
    sweep_run_id = run.info.run_id
    outcomes = _resumed_outcomes(client, experiment_id, sweep_run_id, points) if resume else {}
    pending = [i for i in range(len(points)) if i not in outcomes]
    started = int(time.time() * 1000)
    progress = on_progress or (lambda done, total: None)
    status = "FAILED"  # until the sweep gets through: its run must not stay RUNNING
    copied: set[int] = set()

    def copy_reports(outcome: PointOutcome) -> None:
        # While the other points run: the copies cost the sweep no wall time at its end.
        sweep_report.copy_run_reports(client, outcome.run_id)
        copied.add(outcome.index)

    interrupted, closing = False, None
    try:
        try:
            progress(len(outcomes), len(points))
            if pending:
                interrupted, closing = _run_on_cluster(
                    client, address, workers, spec, points, pending, outcomes,
                    sweep_run_id=sweep_run_id, retries=retries, timeout=timeout, tracking_uri=uri,
                    environment=_worker_environment(uri, sweep_run_id, local=not address),
                    progress=progress, ended=copy_reports,
                )  # fmt: skip
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            _end_interrupted(client, experiment_id, sweep_run_id, local=not address)
        _fill_missing_outcomes(client, experiment_id, sweep_run_id, points, outcomes, started)
        ordered = [outcomes[i] for i in range(len(points))]
        table, report, finished = _record_results(client, run, spec, ordered, copy_reports, copied)
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


class _Dispatch:
    """The points of a sweep handed to Dask: what is submitted, what waits, what was learnt."""

    def __init__(
        self,
        dask: Any,
        spec: SweepSpec,
        points: list[tuple[dict[str, Any], dict[str, Any]]],
        pending: list[int],
        task: Mapping[str, Any],
    ) -> None:
        self.dask, self.spec, self.points, self.task = dask, spec, points, task
        self.attempts = dict.fromkeys(pending, 0)
        self.futures: list[Any] = []
        self.index_of: dict[str, int] = {}
        self.waiting = list(pending)
        self.seconds: dict[int, float] = {}  # run times of the finished points, to order the rest
        self.varied = [point for point, _ in points]

    def submit(self, index: int) -> Any:
        """Submit point ``index`` (its current attempt) as a :func:`run_point` task."""
        point, values = self.points[index]
        future = self.dask.submit(
            run_point,
            self.spec.notebook,
            values,
            index=index,
            point=point,
            **self.task,
            key=f"fraudkit-sweep-{self.task['sweep_run_id']}-{index}-{self.attempts[index]}",
            pure=False,
        )
        self.futures.append(future)
        self.index_of[future.key] = index
        return future

    def submit_next(self) -> Any:
        """Submit the waiting point expected to take longest."""
        index = longest_first(self.waiting, self.varied, self.seconds)[0]
        self.waiting.remove(index)
        return self.submit(index)


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
    tracking_uri: str | None = None,
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
    sweep_run_id, environment, timeout, tracking_uri
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

    task = {"sweep_run_id": sweep_run_id, "environment": environment, "timeout": timeout,
            "tracking_uri": tracking_uri}  # fmt: skip
    dispatch = _Dispatch(dask, spec, points, pending, task)
    try:  # Ctrl-C while the first points are handed out cancels them too
        first = [dispatch.submit_next() for _ in range(min(slots or len(pending), len(pending)))]
        queue = as_completed(first, loop=dask.loop)
        for future in queue:
            index = dispatch.index_of[future.key]
            try:
                done = future.result()
            except Exception as exc:  # the task itself broke (e.g. its worker kept dying)
                done = {"run_id": None, "status": "FAILED", "error": str(exc), "metrics": {}}
            if done["status"] != "FINISHED" and dispatch.attempts[index] < retries:
                dispatch.attempts[index] += 1
                queue.add(dispatch.submit(index))
                continue
            if done["status"] == "FINISHED" and done.get("seconds") is not None:
                dispatch.seconds[index] = done["seconds"]
            if dispatch.waiting:
                queue.add(dispatch.submit_next())
            outcomes[index] = PointOutcome(
                index, points[index][0], done["run_id"], done["status"], done["error"],
                done["metrics"],
            )  # fmt: skip
            progress(len(outcomes), len(points))
            ended(outcomes[index])
    except KeyboardInterrupt:
        dask.cancel(dispatch.futures, force=True)
        return True
    return False
