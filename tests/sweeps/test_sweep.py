"""Notebook sweeps: grids and cases, refusals before any run, and real sweeps on a LocalCluster."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.config import reports_dir
from fraudkit.core.exceptions import ConfigurationError, NotebookParameterError
from fraudkit.core.tags import (
    ERROR_TAG,
    PARENT_RUN_TAG,
    SWEEP_EXPERIMENT_TAG,
    SWEEP_FAILED_TAG,
    SWEEP_FINISHED_TAG,
    SWEEP_INDEX_TAG,
    SWEEP_POINT_TAG,
    SWEEP_RUN_TAG,
)
from fraudkit.reports.sweep_page import render_sweep_report, sweep_report_path
from fraudkit.sweeps.results import results_table
from fraudkit.sweeps.run import (
    PointOutcome,
    expand_points,
    load_sweep_spec,
    run_point,
    run_sweep,
    sweep_children,
)
from fraudkit.sweeps.spec import SweepSpec, longest_first
from fraudkit.sweeps.worker import ENV_SWEEP_RUN

# 20,000 rows at 1 % fraud: a training run of a few seconds with enough frauds to score.
QUICK = {"n_transactions": 20_000, "fraud_rate": 0.01}


@pytest.fixture
def store(backend):
    """The default manager on the embedded SQLite store."""
    return mlflow_manager


def _training_runs(store) -> list:
    return store.client.search_runs([store.experiment_id("training")])


# -- grids, cases and sweep files ----------------------------------------------------------


def test_grid_points_are_every_combination_in_order():
    points = expand_points({"seed": [1, 2], "model_type": ["a", "b"]}, None)
    assert points == [
        {"seed": 1, "model_type": "a"},
        {"seed": 1, "model_type": "b"},
        {"seed": 2, "model_type": "a"},
        {"seed": 2, "model_type": "b"},
    ]


def test_cases_combine_with_the_grid():
    cases = [{"model_types": "a,b"}, {"model_types": "c"}]
    assert expand_points(None, cases) == cases
    points = expand_points({"seed": [1, 2]}, cases)
    assert points == [
        {"model_types": "a,b", "seed": 1},
        {"model_types": "a,b", "seed": 2},
        {"model_types": "c", "seed": 1},
        {"model_types": "c", "seed": 2},
    ]


@pytest.mark.parametrize(
    ("grid", "cases", "message"),
    [
        (None, None, "needs a grid"),
        ({"seed": []}, None, r"\['seed'\] have no values"),
        ({"seed": [1]}, [{"seed": 2}], "both in the grid and in a case"),
    ],
)
def test_bad_grids_are_refused(grid, cases, message):
    with pytest.raises(ConfigurationError, match=message):
        expand_points(grid, cases)


# Run times of a model-type x seed grid: what a real one costs depends on the model type.
COST = {"a": 1.0, "b": 5.0, "c": 3.0}
GRID = {"seed": [1, 2], "model_type": ["a", "b", "c"]}  # points 0-5: a1 b1 c1 a2 b2 c2


def test_points_are_ordered_longest_expected_first_as_run_times_are_learnt():
    points = expand_points(GRID, None)
    # Nothing finished: grid order.
    assert longest_first([1, 2, 3], points, {}) == [1, 2, 3]
    # After a1 (1 s): b2 and c2 share nothing known, so go first; then the points with one
    # unknown value, in grid order.
    assert longest_first([1, 2, 3, 4, 5], points, {0: 1.0}) == [4, 5, 1, 2, 3]
    # After a1 and b1: b costs 4 s more than a whatever the seed; c, not seen, may cost as
    # much as b. Among equal expectations the point with more unknowns goes first.
    assert longest_first([2, 3, 4, 5], points, {0: 1.0, 1: 5.0}) == [5, 2, 4, 3]
    # After a1, b2 and c2: the model type explains the times, not the seed: b, c, a.
    assert longest_first([1, 2, 3], points, {0: 1.0, 4: 5.0, 5: 3.0}) == [1, 2, 3]
    assert longest_first([3, 2, 1], points, {0: 1.0, 4: 5.0, 5: 3.0}) == [1, 2, 3]


def test_points_with_list_values_are_ordered_too():
    points = [{"model_types": ["a", "b"]}, {"model_types": ["c"]}, {"model_types": ["a", "b"]}]
    assert longest_first([1, 2], points, {0: 9.0}) == [1, 2]  # c unknown: first
    assert longest_first([2, 1], points, {0: 1.0, 1: 9.0}) == [1, 2]


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("slots", "order"),
    [
        (1, [0, 4, 5, 1, 2, 3]),  # a local cluster: longest expected first, as learnt
        (None, [0, 1, 2, 3, 4, 5]),  # an existing cluster: everything at once, grid order
    ],
)
def test_a_local_cluster_gets_the_longest_expected_point_as_a_worker_frees_up(
    monkeypatch, slots, order
):
    """On one worker the sweep hands out a1, b2 (all unknown), c2, then b1, c1 and a2."""
    from distributed import Client

    import fraudkit.sweeps.run

    def fake_point(notebook, values, *, index, point, **options):
        seconds = COST[point["model_type"]]
        return {"run_id": f"run{index}", "status": "FINISHED", "error": None,
                "metrics": {"seconds": seconds}, "seconds": seconds}  # fmt: skip

    monkeypatch.setattr(fraudkit.sweeps.run, "run_point", fake_point)
    points = [(point, point) for point in expand_points(GRID, None)]
    outcomes: dict[int, PointOutcome] = {}
    ended = []
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as dask:
        interrupted = fraudkit.sweeps.run.run_points(
            dask, SweepSpec("training", GRID), points, list(range(6)), outcomes,
            sweep_run_id="s", environment={}, retries=0, timeout=None,
            progress=lambda done, total: None, ended=ended.append, slots=slots,
        )  # fmt: skip
    assert not interrupted
    # One worker thread: the points end in the order they were handed out.
    assert [o.index for o in ended] == order
    assert sorted(outcomes) == list(range(6))
    assert all(o.status == "FINISHED" for o in outcomes.values())


def test_sweep_file_is_read_and_checked(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "notebook: model_comparison\n"
        "grid:\n  seed: [1, 2]\n  fraud_rate: 0.01\n"
        "cases:\n  - model_types: logistic_regression,random_forest\n"
        "parameters:\n  n_transactions: 20000\n"
    )
    spec = load_sweep_spec(path)
    assert spec.notebook == "model_comparison"
    assert spec.grid == {"seed": [1, 2], "fraud_rate": [0.01]}  # a scalar is one value
    assert spec.cases == [{"model_types": "logistic_regression,random_forest"}]
    assert spec.parameters == {"n_transactions": 20000}
    path.write_text("notebook: training\ngrids:\n  seed: [1]\n")
    with pytest.raises(ConfigurationError, match=r"unknown keys \['grids'\]"):
        load_sweep_spec(path)
    path.write_text("notebook: training\ncases: {seed: 1}\n")
    with pytest.raises(ConfigurationError, match="cases: must be a list"):
        load_sweep_spec(path)


# -- refusals before anything runs ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_one_bad_point_rejects_the_whole_sweep_before_any_run(store):
    grid = {"seed": ["1", "2"], "n_transactions": ["20000", "many"]}
    with pytest.raises(NotebookParameterError) as caught:
        run_sweep("training", grid=grid, parameters={"fraud_rate": 0.01})
    message = str(caught.value)
    assert "sweep point 1" in message and '"many"' in message and "must be int" in message
    assert "no run was created" in message
    with pytest.raises(NotebookParameterError, match="has no parameter 'n_rows'"):
        run_sweep("training", grid={"seed": [1]}, parameters={"n_rows": 5})
    with pytest.raises(NotebookParameterError, match=r"sweep point 1.*'handbok'.*neither"):
        run_sweep("training", grid={"schema": ["handbook", "handbok"]})
    assert _training_runs(store) == []
    result = CliRunner().invoke(cli, ["sweep", "training", "-g", "n_transactions", "5,x"])
    assert result.exit_code == 1
    assert "sweep point 1" in result.output and "Traceback" not in result.output
    assert _training_runs(store) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_remote_scheduler_with_a_sqlite_store_is_refused(store, monkeypatch):
    with pytest.raises(ConfigurationError, match="set MLFLOW_TRACKING_URI to a tracking server"):
        run_sweep("training", grid={"seed": [1, 2]}, scheduler="tcp://10.255.0.1:8786")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.255.0.1:8786")
    result = CliRunner().invoke(cli, ["sweep", "training", "-g", "seed", "1,2"])
    assert result.exit_code == 1
    assert "cannot reach" in result.output and "10.255.0.1:8786" in result.output
    assert _training_runs(store) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_resume_of_an_unknown_sweep_is_refused(store):
    with pytest.raises(ConfigurationError, match="no sweep run 'nope'"):
        run_sweep("training", resume="nope")
    plain = store.client.create_run(store.experiment_id("training"))
    with pytest.raises(ConfigurationError, match=r"sweep/spec\.json"):
        run_sweep("training", resume=plain.info.run_id)


def test_cli_needs_a_notebook():
    result = CliRunner().invoke(cli, ["sweep", "-g", "seed", "1,2"])
    assert result.exit_code == 1 and "name the NOTEBOOK" in result.output


# -- the table and the report ----------------------------------------------------------------


def test_table_and_report_show_every_point_and_the_failures(tmp_path):
    outcomes = [
        PointOutcome(0, {"seed": 1, "model_type": "lr"}, "r0", "FINISHED", None, {"roc_auc": 0.9}),
        PointOutcome(1, {"seed": 2, "model_type": "lr"}, "r1", "FINISHED", None, {"roc_auc": 0.8}),
        PointOutcome(2, {"seed": 1, "model_type": "<b>hgb</b>"}, "r2", "FAILED", "boom", {}),
        # A case may leave a parameter out: it runs with the notebook's default.
        PointOutcome(3, {"seed": 3}, "r3", "FINISHED", None, {"roc_auc": 0.7}),
    ]
    table = results_table(outcomes)
    assert list(table.columns) == ["index", "seed", "model_type", "status", "roc_auc", "run_id"]
    assert table["roc_auc"].iloc[:2].tolist() == [0.9, 0.8] and pd.isna(table["roc_auc"][2])
    assert pd.isna(table["model_type"][3])
    page = render_sweep_report(
        table, notebook="training", run_id="s1", title="sweep-1", destination=tmp_path / "r.html"
    ).read_text()
    assert "3 of 4 points finished" in page
    assert "point 2" in page and "FAILED" in page and "r2" in page
    # One plot per key metric and varied parameter, embedded; no markup from the values.
    assert page.count("data:image/png;base64,") == 2
    assert "<b>hgb</b>" not in page and "&lt;b&gt;hgb&lt;/b&gt;" in page
    assert "<script" not in page and "http" not in page


# -- real sweeps on a LocalCluster -----------------------------------------------------------


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sweep_of_four_training_points_on_a_local_cluster(store):
    grid = {"seed": [1, 2], "model_type": ["logistic_regression", "hist_gradient_boosting"]}
    seen: list[tuple[int, int]] = []
    result = run_sweep(
        "training",
        grid=grid,
        parameters=QUICK,
        workers=2,
        retries=0,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert result.exit_code == 0 and result.finished == 4 and not result.failed
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    experiment = store.experiment_id("training")
    sweep = store.client.get_run(result.sweep_run_id)
    assert sweep.info.status == "FINISHED"
    assert sweep.data.tags[SWEEP_EXPERIMENT_TAG] == "true"
    assert sweep.data.tags[SWEEP_FINISHED_TAG] == "4" and sweep.data.tags[SWEEP_FAILED_TAG] == "0"
    assert sweep.data.params["n_transactions"] == "20000"
    assert json.loads(sweep.data.params["grid.seed"]) == [1, 2]
    children = sweep_children(store.client, experiment, result.sweep_run_id)
    assert len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags[PARENT_RUN_TAG] for c in children} == {result.sweep_run_id}
    assert {c.data.tags[SWEEP_RUN_TAG] for c in children} == {result.sweep_run_id}
    assert sorted(int(c.data.tags[SWEEP_INDEX_TAG]) for c in children) == [0, 1, 2, 3]
    points = {
        c.data.tags[SWEEP_INDEX_TAG]: json.loads(c.data.tags[SWEEP_POINT_TAG]) for c in children
    }
    assert points["3"] == {"seed": 2, "model_type": "hist_gradient_boosting"}
    for child in children:  # each point ran with its own values and the shared ones
        point = points[child.data.tags[SWEEP_INDEX_TAG]]
        assert child.data.params["model_type"] == point["model_type"]
        assert child.data.params["seed"] == str(point["seed"])
        assert child.data.params["n_transactions"] == "20000"
        folder = reports_dir() / child.data.tags["fraudkit.report_dir"]
        assert (folder / "report.html").is_file() and (folder / "notebook.ipynb").is_file()
    # The table: one row per point, grid parameters x key metrics, run ids and statuses.
    table = result.table
    assert len(table) == 4 and set(table["status"]) == {"FINISHED"}
    assert set(table["run_id"]) == {c.info.run_id for c in children}
    assert table["average_precision"].between(0, 1).all()
    artifacts = {a.path for a in store.client.list_artifacts(result.sweep_run_id, "sweep")}
    assert {"sweep/results.csv", "sweep/results.parquet", "sweep/report.html"} <= artifacts
    logged = pd.read_csv(store.client.download_artifacts(result.sweep_run_id, "sweep/results.csv"))
    assert logged["run_id"].tolist() == table["run_id"].tolist()
    assert result.report == sweep_report_path(sweep.info.run_name)
    page = result.report.read_text()
    assert "4 of 4 points finished" in page and page.count("data:image/png;base64,") >= 4
    assert store.client.search_runs([experiment], "attributes.status = 'RUNNING'") == []


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_resume_runs_only_the_point_that_did_not_finish(store, tmp_path):
    from fraudkit.science.simulate import TransactionSimulator

    data = tmp_path / "transactions.csv"  # missing at first: that point fails
    cases = [{"seed": 1}, {"seed": 2, "data_path": str(data)}]
    first = run_sweep("training", cases=cases, parameters=QUICK, workers=2, retries=0)
    assert first.exit_code == 1 and first.finished == 1
    failed = first.failed[0]
    assert failed.index == 1 and failed.status == "FAILED" and failed.run_id
    assert "transactions.csv" in (failed.error or "")
    assert store.client.get_run(first.sweep_run_id).info.status == "FAILED"
    assert first.table["status"].tolist() == ["FINISHED", "FAILED"]
    kept = first.outcomes[0].run_id
    TransactionSimulator(seed=2, fraud_rate=0.01).sample(20_000).to_csv(data, index=False)
    resumed = CliRunner().invoke(
        cli, ["sweep", "--resume", first.sweep_run_id, "--workers", "2", "--json"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "Downloading artifacts" not in resumed.stderr  # no MLflow bars in the output
    outcome = json.loads(resumed.stdout)  # stderr may hold warnings
    assert outcome["sweep_run_id"] == first.sweep_run_id and outcome["finished"] == 2
    assert outcome["outcomes"][0]["run_id"] == kept  # not run again
    assert outcome["outcomes"][1]["run_id"] not in (None, failed.run_id)
    children = sweep_children(store.client, store.experiment_id("training"), first.sweep_run_id)
    statuses = sorted((c.data.tags[SWEEP_INDEX_TAG], c.info.status) for c in children)
    assert statuses == [("0", "FINISHED"), ("1", "FAILED"), ("1", "FINISHED")]
    assert store.client.get_run(first.sweep_run_id).info.status == "FINISHED"
    logged = pd.read_csv(store.client.download_artifacts(first.sweep_run_id, "sweep/results.csv"))
    assert logged["status"].tolist() == ["FINISHED", "FINISHED"]


def _sweep_child(store, sweep_run_id: str, index: int, status: str) -> str:
    """A child run of the sweep for point ``index``, left in ``status`` as a worker left it."""
    experiment_id = store.experiment_id("training")
    tags = {SWEEP_RUN_TAG: sweep_run_id, SWEEP_INDEX_TAG: str(index), PARENT_RUN_TAG: sweep_run_id}
    run = store.client.create_run(experiment_id, tags=tags)
    store.client.log_metric(run.info.run_id, "average_precision", 0.5 + index / 10)
    if status != "RUNNING":
        store.client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_a_task_rerun_after_its_point_finished_does_not_run_it_twice(store, monkeypatch):
    """A worker killed after the point's run ended, before the task returned: Dask reruns it."""
    import fraudkit.runner.execution

    def must_not_run(*args, **kwargs):
        raise AssertionError("the finished point was run a second time")

    monkeypatch.setattr(fraudkit.runner.execution, "run_notebook", must_not_run)
    sweep = store.client.create_run(store.experiment_id("training")).info.run_id
    other_point = _sweep_child(store, sweep, 1, "FINISHED")
    failed_try = _sweep_child(store, sweep, 0, "FAILED")
    finished = _sweep_child(store, sweep, 0, "FINISHED")
    done = run_point(
        "training",
        QUICK,
        sweep_run_id=sweep,
        index=0,
        point={"seed": 1},
        environment={},
        timeout=None,
    )
    assert done.pop("seconds") >= 0  # the run's time, for ordering the points still to run
    assert done == {
        "run_id": finished,
        "status": "FINISHED",
        "error": None,
        "metrics": {"average_precision": 0.5},
    }
    children = sweep_children(store.client, store.experiment_id("training"), sweep)
    assert sorted(c.info.run_id for c in children) == sorted([other_point, failed_try, finished])


def test_a_task_rerun_mid_job_ends_the_dead_workers_run_and_runs_the_point(store, monkeypatch):
    """A worker killed mid-job left its run RUNNING: it ends KILLED, the point runs once more."""
    import fraudkit.runner.execution

    calls = []

    def fake_run(notebook, parameters, **options):
        calls.append((notebook, parameters, options["tags"][SWEEP_INDEX_TAG]))
        run_id = _sweep_child(store, options["parent_run_id"], 0, "FINISHED")
        return type("Ran", (), {"run_id": run_id, "status": "FINISHED", "metrics": {"x": 1.0}})

    monkeypatch.setattr(fraudkit.runner.execution, "run_notebook", fake_run)
    sweep = store.client.create_run(store.experiment_id("training")).info.run_id
    stale = _sweep_child(store, sweep, 0, "RUNNING")
    done = run_point(
        "training",
        QUICK,
        sweep_run_id=sweep,
        index=0,
        point={"seed": 1},
        environment={},
        timeout=None,
    )
    assert calls == [("training", QUICK, "0")]
    assert done["status"] == "FINISHED" and done["run_id"] != stale
    left = store.client.get_run(stale)
    assert left.info.status == "KILLED"
    assert "its worker stopped" in left.data.tags[ERROR_TAG]


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_ctrl_c_cancels_the_sweep_and_leaves_nothing_running(store):
    def interrupt(done: int, total: int) -> None:
        if done >= 1:
            raise KeyboardInterrupt

    result = run_sweep(
        "training",
        grid={"seed": [1, 2, 3]},
        parameters=QUICK,
        workers=1,
        retries=0,
        on_progress=interrupt,
    )
    assert result.interrupted and result.exit_code == 1 and result.finished == 1
    assert {o.status for o in result.outcomes[1:]} <= {"KILLED", "CANCELLED", "FAILED"}
    experiment = store.experiment_id("training")
    assert store.client.get_run(result.sweep_run_id).info.status == "KILLED"
    assert store.client.search_runs([experiment], "attributes.status = 'RUNNING'") == []


# Seconds from the sweep's first child run to Ctrl-C: as a worker creates its run, as the
# other worker creates its own, as their kernels start, import and resume their runs (a
# worker stops some 5 s after Ctrl-C; its kernel goes on a second or so). Measured from
# an event, not the start: on a busy machine a worker takes 10-20 s to get to its first run.
CTRL_C_AFTER_FIRST_RUN = [0.0, 1.0, 4.0, 9.0, 14.0]
# A CPU-burning process, bounded in time should the test itself die before killing it.
BURN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass"


def _sweep_processes(sweep_run_id: str) -> list[int]:
    """Ids of the live processes marked as working for the sweep (workers, kernels)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            marked = process.environ().get(ENV_SWEEP_RUN) == sweep_run_id
            if marked and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def _ctrl_c_after_first_run(store, run_points, delay: float, presses: list[str]):
    """``run_points``, with Ctrl-C (SIGINT to this process) ``delay`` s after the first child run.

    SIGINT, as a terminal sends it, lands wherever the main thread is, not only where the
    sweep calls back (as the test above interrupts it); it is never sent once ``run_points``
    has returned. Should the sweep still run 3 s later, Ctrl-C is pressed again, as a person
    would: on a loaded machine an early SIGINT was seen to go unanswered (see the closing
    note of the layers issue); what this test holds the sweep to is the state it leaves.
    Each SIGINT sent appends the sweep run's id to ``presses``; seeing the first run and
    each failed look for it append a line saying so (the failure message shows them).
    """
    experiment = store.experiment_id("training")

    def interrupted(*args, sweep_run_id, **kwargs):
        lock, stopped = threading.Lock(), threading.Event()

        def press() -> None:
            with lock:
                if not stopped.is_set():
                    presses.append(sweep_run_id)
                    os.kill(os.getpid(), signal.SIGINT)

        def ctrl_c() -> None:
            query = f"tags.`{SWEEP_RUN_TAG}` = '{sweep_run_id}'"
            while not stopped.wait(0.1):
                try:
                    if store.client.search_runs([experiment], query, max_results=1):
                        presses.append(f"seen {sweep_run_id}")
                        break
                except Exception as exc:  # a busy SQLite store ("database is locked"): ask again
                    presses.append(f"error {type(exc).__name__}: {str(exc)[:80]}")
                    continue
            if not stopped.wait(delay):
                press()
                while not stopped.wait(3.0):
                    press()

        watcher = threading.Thread(target=ctrl_c, daemon=True)
        watcher.start()
        try:
            return run_points(*args, sweep_run_id=sweep_run_id, **kwargs)
        finally:
            # Taking the lock may itself be interrupted by a press that beat the return;
            # stop the presses whatever happens, so none reaches the sweep's clean-up.
            while not stopped.is_set():
                with contextlib.suppress(KeyboardInterrupt), lock:
                    stopped.set()
            watcher.join()

    return interrupted


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_ctrl_c_at_any_moment_under_cpu_load_leaves_no_run_running(
    store, monkeypatch, record_property
):
    """Ctrl-C at varied moments of sweeps on a busy machine (two CPU-burning processes).

    Each time the sweep ends KILLED with no run RUNNING and no worker or kernel left, and
    none comes back RUNNING later (a kernel outliving its worker may resume its run).
    """
    import fraudkit.sweeps.run

    run_points = fraudkit.sweeps.run.run_points
    experiment = store.experiment_id("training")
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    presses: list[str] = []
    interrupted = 0
    # Ctrl-C as a terminal delivers it. A process started in the background of a shell
    # without job control (`make test &`, some CI runners) inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: every press would go unheard.
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for delay in CTRL_C_AFTER_FIRST_RUN:
            patched = _ctrl_c_after_first_run(store, run_points, delay, presses)
            monkeypatch.setattr(fraudkit.sweeps.run, "run_points", patched)
            grid = {"seed": [1, 2, 3, 4]}
            result = run_sweep("training", grid=grid, parameters=QUICK, workers=2, retries=0)
            # In CI-like runs the first sweep's Ctrl-C has gone unanswered (the sweep ran to
            # its end; see the closing note of the layers issue), with SIGINT handled as
            # above. Such a sweep must still end cleanly; the others are the interrupts under
            # test.
            ended = store.client.get_run(result.sweep_run_id).info.status
            assert (ended == "KILLED") if result.interrupted else (ended != "RUNNING")
            interrupted += result.interrupted
            assert store.client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
            assert _sweep_processes(result.sweep_run_id) == []
    finally:
        record_property("ctrl_c_presses", [presses.count(s) for s in dict.fromkeys(presses)])
        signal.signal(signal.SIGINT, handler)
        for burner in burners:
            burner.kill()
            burner.wait()
    time.sleep(2)  # what a stray kernel would do, it would have done by now
    assert store.client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    summary = {s: presses.count(s) for s in dict.fromkeys(presses)}
    assert interrupted >= 2, (
        f"only {interrupted} of the sweeps stopped at Ctrl-C; presses and looks: {summary}"
    )


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_runs_a_two_point_sweep(store, tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text("notebook: training\nparameters:\n  n_transactions: 20000\n")
    args = ["sweep", "-f", str(sweep_file), "-g", "seed", "1,2", "-p", "fraud_rate", "0.01"]
    result = CliRunner().invoke(cli, [*args, "--workers", "2", "--retries", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 points finished" in result.output and "report:" in result.output
    assert (reports_dir() / "index.html").is_file()
    runs = _training_runs(store)
    sweeps = [r for r in runs if r.data.tags.get(SWEEP_EXPERIMENT_TAG) == "true"]
    assert len(sweeps) == 1 and len(runs) == 3
    children = [r for r in runs if r.data.tags.get(SWEEP_RUN_TAG) == sweeps[0].info.run_id]
    assert sorted(c.data.params["seed"] for c in children) == ["1", "2"]
    assert {c.data.params["fraud_rate"] for c in children} == {"0.01"}


@pytest.mark.notebook
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_point_over_its_time_budget_fails_is_retried_and_named(store):
    args = ["sweep", "training", "-g", "seed", "1", "-p", "n_transactions", "20000"]
    options = ["--workers", "1", "--retries", "1", "--timeout", "2", "--quiet"]
    result = CliRunner().invoke(cli, [*args, *options])
    assert result.exit_code == 1, result.output
    experiment = store.experiment_id("training")
    (sweep,) = [r for r in _training_runs(store) if r.data.tags.get(SWEEP_EXPERIMENT_TAG)]
    assert sweep.info.status == "FAILED" and sweep.data.tags[SWEEP_FAILED_TAG] == "1"
    children = sweep_children(store.client, experiment, sweep.info.run_id)
    # The first attempt and its one retry, each recorded as run_notebook records a failure.
    assert [c.info.status for c in children] == ["FAILED", "FAILED"]
    assert {c.data.tags[SWEEP_INDEX_TAG] for c in children} == {"0"}
    assert "exceeded the timeout" in children[0].data.tags["fraudkit.error"]
    # The summary names the failed point, its last run and why.
    assert "0 of 1 points finished" in result.output
    assert f'point 0 {{"seed": 1}}: FAILED, run {children[-1].info.run_id}' in result.output
    assert "exceeded the timeout" in result.output
