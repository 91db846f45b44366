"""Faults: the tracking server dies, the kernel dies, the reports folder cannot be written.

Each must end in a clear FraudkitError within a bounded time, with no run left FINISHED by
mistake and the executed notebook kept wherever it could be written.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from support.servers import MlflowServer
from support.workers import WorkerPool

from fraudkit import mlflow_manager
from fraudkit.core.config import HTTP_DEFAULTS, notebooks_dir
from fraudkit.core.exceptions import NotebookExecutionError, TrackingError
from fraudkit.runner.execution import run_notebook
from fraudkit.runner.parameters import NOTEBOOKS

SMALL = {"n_transactions": 20_000, "fraud_rate": 0.01, "model_type": "logistic_regression"}
EXPERIMENT = "credit_card_fraud_detection"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    """A tracking server of its own (SQLite store), so the test may kill and restart it."""
    root = tmp_path / "server"
    root.mkdir()
    with MlflowServer(f"sqlite:///{root / 'server.db'}", root) as started:
        yield started


def _wait_for_logged_data(url: str, timeout: float = 300) -> str:
    """Return the id of the first training run that has logged its data (cell 4 done)."""
    client = MlflowClient(tracking_uri=url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        for run in runs:
            if "fraudkit.data_fingerprint" in run.data.tags:
                return run.info.run_id
        time.sleep(0.5)
    raise TimeoutError("the notebook logged no data within the time limit")


@pytest.mark.server
@pytest.mark.notebook
@pytest.mark.slow
def test_server_killed_mid_notebook_fails_fast_and_next_run_works(
    server, tmp_path, monkeypatch, record_property
):
    # Measure fraudkit's own HTTP retry defaults, not the test suite's.
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    env = {"MLFLOW_TRACKING_URI": server.url, "FRAUDKIT_HOME": str(home)}
    with WorkerPool(tmp_path) as pool:
        pool.spawn("killed", ["notebook", json.dumps(SMALL)], env)
        run_id = _wait_for_logged_data(server.url)
        server.kill()
        killed_at = time.monotonic()
        result = pool.wait(timeout=300)["killed"].output
    time_to_fail = time.monotonic() - killed_at
    record_property("time_to_fail_s", round(time_to_fail, 1))

    assert result["error_type"] == "TrackingUnavailableError", result
    assert time_to_fail < 120
    message = result["error"]
    assert f"cannot reach the MLflow tracking store {server.url}" in message
    assert run_id in message
    kept = Path(message.rsplit("kept at ", 1)[1].split()[0].rstrip(";)"))
    assert kept.is_file() and kept.is_relative_to(home / "reports")
    cells = nbformat.read(kept, as_version=4).cells
    assert any("log_dataset" in c.source and c.get("outputs") for c in cells)  # partial run
    assert (kept.parent / "report.html").is_file()

    # While the server is down a new run is refused at once, before anything is written.
    with WorkerPool(tmp_path) as pool:
        pool.spawn("refused", ["notebook", json.dumps(SMALL)], env)
        refused = pool.wait(timeout=120)["refused"].output
    assert refused["error_type"] == "TrackingUnavailableError", refused
    assert "start the server" in refused["error"]
    assert len(list((home / "reports" / "runs").iterdir())) == 1

    server.start()  # same port, same store
    with WorkerPool(tmp_path) as pool:
        pool.spawn("after", ["notebook", json.dumps(SMALL)], env)
        after = pool.wait(timeout=300)["after"].output
    assert after["status"] == "FINISHED", after
    client = MlflowClient(tracking_uri=server.url)
    assert client.get_run(after["run_id"]).info.status == "FINISHED"
    assert client.get_run(run_id).info.status != "FINISHED"


def _notebook_copy_with_cell(folder: Path, after: str, source: str) -> Path:
    """Copy the kit's notebooks to ``folder`` with ``source`` inserted in the training
    notebook after the first cell containing ``after``."""
    shutil.copytree(notebooks_dir(), folder)
    path = folder / NOTEBOOKS["training"]
    notebook = nbformat.read(path, as_version=4)
    position = next(i for i, c in enumerate(notebook.cells) if after in c.source) + 1
    notebook.cells.insert(position, nbformat.v4.new_code_cell(source))
    nbformat.write(notebook, path)
    return folder


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_kernel_killed_mid_notebook_marks_run_failed_with_partial_notebook(
    backend, tmp_path, monkeypatch
):
    folder = _notebook_copy_with_cell(
        tmp_path / "notebooks", "log_dataset", "import os\n\nos._exit(1)  # as an OOM kill would"
    )
    monkeypatch.setenv("FRAUDKIT_NOTEBOOKS_DIR", str(folder))
    started = time.monotonic()
    with pytest.raises(NotebookExecutionError, match="kernel died") as caught:
        run_notebook("training", SMALL, progress=False)
    assert time.monotonic() - started < 180
    error = caught.value
    run = mlflow_manager.client.get_run(error.run_id)
    assert run.info.status == "FAILED"
    assert "kernel died" in run.data.tags["fraudkit.error"]
    logged = {a.path for a in mlflow_manager.client.list_artifacts(error.run_id, "notebook")}
    assert {"notebook/notebook.ipynb", "notebook/report.html", "notebook/error.txt"} <= logged
    cells = nbformat.read(error.output_path, as_version=4).cells
    assert "os._exit" in cells[error.cell_index].source
    assert any("log_dataset" in c.source and c.get("outputs") for c in cells)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_unwritable_reports_folder_is_a_clear_error_and_a_failed_run(backend, fraudkit_home):
    # As root, permission bits do not stop writes; a file where the folder should be does.
    (fraudkit_home / "reports").write_text("not a folder")
    with pytest.raises(TrackingError, match="could not write the report") as caught:
        run_notebook("training", SMALL, progress=False)
    message = str(caught.value)
    assert str(fraudkit_home / "reports") in message and "FRAUDKIT_HOME" in message
    runs = mlflow_manager.client.search_runs([mlflow_manager.experiment_id("training")])
    assert [r.info.status for r in runs] == ["FAILED"]
