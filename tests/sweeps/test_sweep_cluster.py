"""A real Dask cluster loses a worker mid-job: every point still finishes exactly once.

A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, each in a process
group and with a FRAUDKIT_HOME of its own (as separate machines), run a sweep of quick
training notebooks against the PostgreSQL-backed MLflow server of :mod:`test_team_server`.
The workers are not told the tracking URI: the sweep hands it to them. While both workers
are inside a point's run, one is SIGKILLed with its process group, as a crashed machine,
and a replacement joins. Dask reschedules the lost job; the interrupted run must end KILLED
or FAILED, never RUNNING, and no point may finish twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from support.dask_cluster import DaskCluster
from support.servers import MlflowServer

from fraudkit.core.config import MLFLOW_EXPERIMENTS
from fraudkit.core.tags import PARENT_RUN_TAG, SWEEP_INDEX_TAG, SWEEP_POINT_TAG, SWEEP_RUN_TAG
from fraudkit.sweeps.results import RESULTS_CSV
from fraudkit.sweeps.run import expand_points, run_sweep
from fraudkit.tracking.store import paged

GRID = {"seed": [0, 1, 2, 3]}
# Small enough for a point to take well under a minute, large enough to run for seconds.
PARAMETERS = {"n_transactions": 20_000, "fraud_rate": 0.01, "model_type": "logistic_regression"}
EXPERIMENT = MLFLOW_EXPERIMENTS["training"]
VICTIM, SURVIVOR, REPLACEMENT = "w1", "w2", "w3"


@pytest.fixture
def cluster(
    team_server: MlflowServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[DaskCluster]:
    """Scheduler and workers w1, w2; this process (the sweep's client) uses the team server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    with DaskCluster(tmp_path / "dask", (VICTIM, SURVIVOR)) as started:
        yield started


def _all_runs(client: MlflowClient, filter_string: str = "") -> list[Run]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    ids = [experiment.experiment_id]
    return list(paged(client.search_runs, experiment_ids=ids, filter_string=filter_string))


def _running_points(client: MlflowClient) -> dict[str, str]:
    """The sweep's child runs now RUNNING: run id -> point index."""
    running = _all_runs(client, "attributes.status = 'RUNNING'")
    return {
        r.info.run_id: r.data.tags[SWEEP_INDEX_TAG] for r in running if SWEEP_RUN_TAG in r.data.tags
    }


def _kill_during_a_job(
    cluster: DaskCluster, url: str, record: dict[str, Any], stop: threading.Event
) -> None:
    """Once both workers are inside a point's run, SIGKILL the victim and add a replacement.

    ``record`` gets what was killed when; an error is put there too, for the test to raise.
    """
    client = MlflowClient(tracking_uri=url)
    try:
        while not stop.is_set():
            running = _running_points(client)
            # Two RUNNING child runs on two one-thread workers: each executes one of them.
            if len(running) >= 2 and (executing := cluster.executing(VICTIM)):
                victim = cluster.workers[VICTIM]
                started = victim.processes()  # nanny, worker and the notebook's kernel
                cluster.kill_worker(VICTIM)
                record.update(at=time.monotonic(), running=running, executing=executing)
                record["processes"] = len(started)
                record["survivors"] = victim.wait_until_gone(timeout=15)
                cluster.add_worker(REPLACEMENT)
                return
            time.sleep(0.3)
    except BaseException as exc:  # raised in the test's thread, after the sweep
        record["error"] = exc


@pytest.mark.cluster
@pytest.mark.server
@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_worker_killed_mid_job_every_point_finishes_exactly_once(
    cluster: DaskCluster,
    team_server: MlflowServer,
    tmp_path: Path,
    record_property,
):
    record: dict[str, Any] = {}
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_during_a_job, args=(cluster, team_server.url, record, stop), daemon=True
    )
    started = time.monotonic()
    killer.start()
    try:
        # In this thread: run_sweep cancels on Ctrl-C, which only the main thread receives.
        result = run_sweep(
            "training",
            grid=GRID,
            parameters=PARAMETERS,
            scheduler=cluster.address,
            retries=1,
            timeout=600,
        )
    finally:
        stop.set()
        killer.join(timeout=180)
    elapsed = time.monotonic() - started
    if "error" in record:
        raise record["error"]
    assert "at" in record, "the sweep ended before both workers were inside a run"
    assert record["survivors"] == [], "the killed worker left processes (a kernel?) behind"

    client = MlflowClient(tracking_uri=team_server.url)
    points = expand_points(GRID, None)
    children = _all_runs(client, f"tags.`{SWEEP_RUN_TAG}` = '{result.sweep_run_id}'")
    by_index: dict[str, list[Run]] = defaultdict(list)
    for run in children:
        by_index[run.data.tags[SWEEP_INDEX_TAG]].append(run)
    finished = {
        index: [r for r in runs if r.info.status == "FINISHED"] for index, runs in by_index.items()
    }
    interrupted = [r for r in children if r.info.status != "FINISHED"]
    killed_point = {r.info.run_id: r.data.tags[SWEEP_INDEX_TAG] for r in interrupted}
    record_property("points", len(points))
    record_property("child_runs", len(children))
    record_property("duplicates", sum(max(len(runs) - 1, 0) for runs in finished.values()))
    record_property("killed", f"{VICTIM} executing {record['executing']} during {killed_point}")
    record_property("killed_processes", record["processes"])
    record_property("interrupted_status", [r.info.status for r in interrupted])
    record_property("running_after", len(_all_runs(client, "attributes.status = 'RUNNING'")))
    record_property("kill_after_s", round(record["at"] - started, 1))
    record_property("sweep_seconds", round(elapsed, 1))

    # Every point: exactly one FINISHED run, a child of the sweep, tagged with its point.
    assert sorted(by_index, key=int) == [str(i) for i in range(len(points))]
    for index, runs in finished.items():
        assert len(runs) == 1, f"point {index} finished {len(runs)} times"
        run = runs[0]
        assert json.loads(run.data.tags[SWEEP_POINT_TAG]) == points[int(index)]
        assert run.data.tags[PARENT_RUN_TAG] == result.sweep_run_id
        assert run.data.params["seed"] == str(points[int(index)]["seed"])
        assert 0 < run.data.metrics["average_precision"] <= 1
    # The run the victim was executing ended KILLED or FAILED; no other run was interrupted.
    assert len(interrupted) == 1, [(r.info.run_id, r.info.status) for r in interrupted]
    assert interrupted[0].info.status in {"KILLED", "FAILED"}
    assert interrupted[0].info.run_id in record["running"]
    assert not _all_runs(client, "attributes.status = 'RUNNING'")
    assert client.get_run(result.sweep_run_id).info.status == "FINISHED"

    assert result.exit_code == 0 and result.finished == len(points), result.failed
    assert {o.index: o.run_id for o in result.outcomes} == {
        int(index): runs[0].info.run_id for index, runs in finished.items()
    }
    # The sweep table as logged on the sweep run: one FINISHED row per point.
    table = pd.read_csv(client.download_artifacts(result.sweep_run_id, RESULTS_CSV, str(tmp_path)))
    assert len(table) == len(points)
    assert sorted(table["index"]) == list(range(len(points)))
    assert set(table["status"]) == {"FINISHED"}
    assert set(table["run_id"]) == {runs[0].info.run_id for runs in finished.values()}
    assert sorted(table["seed"]) == GRID["seed"]
