"""The team setup for real: PostgreSQL + ``mlflow server --serve-artifacts``, many writers.

One throwaway PostgreSQL cluster and one MLflow server per module; every writer is a
separate process with its own FRAUDKIT_HOME, as on a team's laptops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from support.servers import MlflowServer
from support.workers import WorkerPool

from fraudkit import mlflow_manager
from fraudkit.tracking.store import paged

NOTEBOOK_PARAMETERS = {"n_transactions": 20_000, "fraud_rate": 0.01}
MODEL = "credit_card_fraud_detector"
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(team_server: MlflowServer, monkeypatch: pytest.MonkeyPatch):
    """fraudkit's client on the team server (the test process only reads)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    return mlflow_manager.client


def _runs(client, filter_string: str) -> list:
    experiment = mlflow_manager.experiment_id("training")
    return list(paged(client.search_runs, experiment_ids=[experiment], filter_string=filter_string))


def _served_path(server: MlflowServer, artifact_uri: str) -> Path:
    """Where the server keeps the artifacts at ``mlflow-artifacts:/<experiment>/<run>/...``."""
    assert artifact_uri.startswith("mlflow-artifacts:/"), artifact_uri
    return server.root / "artifacts" / artifact_uri.removeprefix("mlflow-artifacts:/")


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


@pytest.mark.server
@pytest.mark.notebook
@pytest.mark.slow
def test_four_notebooks_in_parallel_on_postgres_server(team_server, client, tmp_path):
    homes = {f"notebook{i}": tmp_path / f"home{i}" for i in range(4)}
    with WorkerPool(tmp_path) as pool:
        for name, home in homes.items():
            home.mkdir()
            env = {"MLFLOW_TRACKING_URI": team_server.url, "FRAUDKIT_HOME": str(home)}
            pool.spawn(name, ["notebook", json.dumps(NOTEBOOK_PARAMETERS)], env)
        results = pool.wait(timeout=600)

    run_ids = {r.output["run_id"] for r in results.values()}
    assert len(run_ids) == 4
    for name, result in results.items():
        assert result.output["status"] == "FINISHED", result.output
        run = client.get_run(result.output["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["n_transactions"] == "20000"
        assert run.data.params["model_type"] == "hist_gradient_boosting"
        assert 0 < run.data.metrics["average_precision"] <= 1
        assert {
            "notebook/notebook.ipynb",
            "notebook/report.html",
            "notebook/notebook.html",
        } <= _artifacts(client, run.info.run_id, "notebook")
        assert "plots/precision_recall.png" in _artifacts(client, run.info.run_id, "plots")
        assert "data/reference.parquet" in _artifacts(client, run.info.run_id, "data")
        # The executed notebook also stays on the writer's own disk.
        local = homes[name] / "reports" / "runs" / run.info.run_name / "notebook.ipynb"
        assert local.is_file()

    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]  # distinct, none lost
    assert {v.run_id for v in versions} == run_ids
    for alias in ("staging", "production"):
        holder = client.get_model_version_by_alias(MODEL, alias)
        assert holder.run_id in run_ids
    # The production model loads through the server's artifact proxy and scores.
    mlflow.set_tracking_uri(team_server.url)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@production")
    assert model.metadata.get_input_schema().input_names()[0] == "V1"


@pytest.mark.server
@pytest.mark.slow
def test_eight_processes_log_800_runs_while_two_register_one_model(
    team_server, client, tmp_path, record_property
):
    writers, per_writer = 8, 100
    env = {"MLFLOW_TRACKING_URI": team_server.url, "FRAUDKIT_HOME": str(tmp_path)}
    started = time.monotonic()
    with WorkerPool(tmp_path) as pool:
        for i in range(writers):
            pool.spawn(f"runs{i}", ["runs", f"writer{i}", str(per_writer)], env)
        for seed in (1, 2):
            pool.spawn(f"model{seed}", ["model", "team_model", str(seed)], env)
        results = pool.wait(timeout=600)
    record_property("write_seconds", round(time.monotonic() - started, 1))

    written = {run_id for i in range(writers) for run_id in results[f"runs{i}"].output["run_ids"]}
    stored = _runs(client, "tags.`fraudkit.label` LIKE 'writer%'")
    assert len(written) == writers * per_writer
    assert {r.info.run_id for r in stored} == written  # nothing lost, nothing extra
    for run in stored:
        index = int(run.data.params["index"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["fraudkit.label"] == f"{run.data.params['worker']}-{index}"
        assert run.data.metrics == {"index": index, "square": index * index}
        # Read from the server's artifact store directly: 800 listings over HTTP cost minutes.
        stored_file = _served_path(team_server, run.info.artifact_uri) / "worker.json"
        assert json.loads(stored_file.read_text()) == {"index": index}

    registered = [results["model1"].output, results["model2"].output]
    versions = client.search_model_versions("name = 'team_model'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert sorted(r["version"] for r in registered) == ["1", "2"]
    assert {v.run_id for v in versions} == {r["run_id"] for r in registered}
    staging = client.get_model_version_by_alias("team_model", "staging")
    assert staging.version in {"1", "2"}
    moves = mlflow_manager.alias_history("team_model", "staging")
    assert sorted(moves["to"]) == ["1", "2"]  # both moves recorded, neither overwritten


def test_compose_file_runs_the_tested_server_command():
    compose = yaml.safe_load((PROJECT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    database, server = services["postgres"], services["mlflow"]
    assert database["image"].startswith("postgres:")
    command = server["command"]
    tested = MlflowServer("postgresql+psycopg2://x", Path("/srv")).command()
    assert [part for part in tested if part.startswith("--")] == [
        part for part in command if part.startswith("--")
    ]
    store = command[command.index("--backend-store-uri") + 1]
    assert store.startswith("postgresql+psycopg2://mlflow:")
    assert store.endswith("@postgres:5432/mlflow")
    assert server["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in database
