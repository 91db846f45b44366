"""The embedded SQLite store under concurrent writers: one mlflow.db, eight processes.

SQLite serialises writers with a file lock; a writer that waits past MLflow's busy timeout,
or that must upgrade a read transaction while another process writes, gets "database is
locked". fraudkit retries those with backoff, so none may reach the user and no run may be
lost.
"""

from __future__ import annotations

import json

import pytest
from support.workers import WorkerPool

from fraudkit import mlflow_manager

NOTEBOOK_PARAMETERS = {
    "n_transactions": 20_000,
    "fraud_rate": 0.01,
    "model_type": "logistic_regression",
}
MODEL = "credit_card_fraud_detector"


@pytest.mark.notebook
@pytest.mark.slow
def test_four_notebooks_and_four_run_loggers_share_one_sqlite_store(fraudkit_home, tmp_path):
    # A fresh home: the store does not exist yet, so the first writers also race to create
    # its schema and the five experiments.
    notebooks, loggers, per_logger = 4, 4, 100
    with WorkerPool(tmp_path) as pool:
        for i in range(notebooks):
            pool.spawn(f"notebook{i}", ["notebook", json.dumps(NOTEBOOK_PARAMETERS)], {})
        for i in range(loggers):
            pool.spawn(f"runs{i}", ["runs", f"logger{i}", str(per_logger)], {})
        results = pool.wait(timeout=600)

    assert all("database is locked" not in r.log for r in results.values())
    client = mlflow_manager.client
    assert mlflow_manager.tracking_uri == f"sqlite:///{fraudkit_home / 'mlflow.db'}"
    experiment = mlflow_manager.experiment_id("training")
    stored = {r.info.run_id: r for r in client.search_runs([experiment], max_results=5000)}
    assert len(stored) == notebooks + loggers * per_logger  # nothing lost, nothing extra

    logged = [run_id for i in range(loggers) for run_id in results[f"runs{i}"].output["run_ids"]]
    assert len(set(logged)) == loggers * per_logger
    for run_id in logged:
        run = stored[run_id]
        index = int(run.data.params["index"])
        assert run.info.status == "FINISHED"
        assert run.data.metrics == {"index": index, "square": index * index}
        assert [a.path for a in client.list_artifacts(run_id)] == ["worker.json"]

    notebook_runs = {results[f"notebook{i}"].output["run_id"] for i in range(notebooks)}
    folders = set()
    for run_id in notebook_runs:
        run = stored[run_id]
        assert run.info.status == "FINISHED"
        assert run.data.params["n_transactions"] == "20000"
        assert "average_precision" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run_id, "notebook")}
        assert {"notebook/notebook.ipynb", "notebook/report.html"} <= artifacts
        folders.add(run.data.tags["fraudkit.report_dir"])
    # Runs started in the same second share a name but never a report folder.
    assert len(folders) == notebooks
    assert all((fraudkit_home / "reports" / f / "notebook.ipynb").is_file() for f in folders)

    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert {v.run_id for v in versions} == notebook_runs
    for alias in ("staging", "production"):
        assert client.get_model_version_by_alias(MODEL, alias).run_id in notebook_runs
