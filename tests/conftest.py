"""Shared fixtures: an isolated FRAUDKIT_HOME per test, MLflow state reset, and a
parametrized tracking backend (embedded SQLite, or a real ``mlflow server``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import MlflowServer, postgres_cluster

os.environ.setdefault("MPLBACKEND", "Agg")
# Keep MLflow's HTTP client from retrying for minutes when a test server is down.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

_FRAUDKIT_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "FRAUDKIT_PIPELINE_ID",
    "FRAUDKIT_NOTEBOOK",
)


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Creating MLflow's schema takes ~1.5 s; do it once and copy the file per test.
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def fraudkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point FRAUDKIT_HOME at a fresh directory and reset MLflow's global state after."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FRAUDKIT_HOME", str(home))
    for name in _FRAUDKIT_ENV:
        monkeypatch.delenv(name, raising=False)
    yield home
    # Imported here, not at the top: the settings above must be in place before MLflow loads.
    from fraudkit.tracking.manager import mlflow_manager

    mlflow_manager.reset()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 with its own SQLite store and proxied artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with MlflowServer(f"sqlite:///{root / 'server.db'}", root) as server:
        yield server.url


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """PostgreSQL backend store + MLflow server with proxied artifacts, torn down after.

    The team setup (`deploy/`): its tests and the sweep's real-cluster test use it.
    """
    with (
        postgres_cluster() as database,
        MlflowServer(database, tmp_path_factory.mktemp("team-server"), workers=2) as server,
    ):
        yield server


def _clear_server(url: str) -> None:
    """Remove registered models and runs left by earlier tests on the shared server."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    for model in client.search_registered_models(max_results=1000):
        client.delete_registered_model(model.name)
    experiments = client.search_experiments(max_results=1000)
    ids = [e.experiment_id for e in experiments]
    for run in client.search_runs(ids, max_results=10000):
        client.delete_run(run.info.run_id)


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.server)])
def backend(
    request: pytest.FixtureRequest,
    fraudkit_home: Path,
    _template_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """Run the test against the embedded SQLite store and against a real server.

    Returns the backend name; the default ``mlflow_manager`` follows the environment.
    """
    if request.param == "sqlite":
        shutil.copy(_template_db, fraudkit_home / "mlflow.db")
    else:
        url = request.getfixturevalue("mlflow_server")
        _clear_server(url)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    return request.param


@pytest.fixture
def manager(backend: str):
    """The default manager on the parametrized backend."""
    from fraudkit.tracking.manager import mlflow_manager

    return mlflow_manager


# What a test's marks say it starts, weighted by the usual cost: a cluster, a browser or a
# notebook kernel costs tens of seconds, a server a few. Under pytest-xdist the workers
# take tests in collection order, so the costly ones go first (a stable sort keeps each
# weight's order): the two workers then finish together on quick tests, instead of one
# waiting out the other's last long one.
_COST = {"cluster": 4, "browser": 3, "notebook": 3, "slow": 2, "server": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests whose marks say they are costly first."""
    items.sort(key=lambda item: -sum(c for m, c in _COST.items() if item.get_closest_marker(m)))
