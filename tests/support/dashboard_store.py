"""A populated tracking store shared by the dashboard tests (library and CLI).

Test modules take the fixtures by assignment (``store = dashboard_store.store``) so each
module builds its SQLite template once and copies it per test.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.tracking.manager import MlflowManager
from fraudkit.tracking.promotion import promote_model

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass
class Store:
    """Ids of the runs :func:`populate_store` created."""

    manager: MlflowManager
    training: list[str]  # newest first
    monitoring: list[str]
    running: str
    backing: str  # backs version 1 (production) of DEFAULT_MODEL_NAME
    staging: str  # backs version 2 (staging)


def log_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    start: int,
    *,
    status: str = "FINISHED",
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
) -> str:
    """Create a run started at ``start`` (epoch ms) with metrics, params and a label tag."""
    run = client.create_run(experiment_id, start_time=start, run_name=name)
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, start, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, v) for k, v in (params or {}).items()],
        tags=[RunTag("fraudkit.label", name)],
    )
    if status != "RUNNING":
        client.set_terminated(run_id, status, end_time=start + 1000)
    return run_id


def populate_store(manager: MlflowManager) -> Store:
    """Six training runs aged 0 h .. 40 d, two monitoring runs, a model with two aliases.

    Training, newest first: t0 (now), t1 (1 h, RUNNING), t2 (2 d), t3 (3 d),
    t4 (10 d, backs version 1 = production), t5 (40 d, backs version 2 = staging).
    Average precision rises with age, so t5 is the best run. Params hold spreadsheet
    formulas and negative numbers.
    """
    ids = manager.setup_experiments()
    client = manager.client
    now = int(time.time() * 1000)
    ages = [0, HOUR_MS, 2 * DAY_MS, 3 * DAY_MS, 10 * DAY_MS, 40 * DAY_MS]
    training = [
        log_run(
            client,
            ids["training"],
            f"t{i}",
            now - age,
            status="RUNNING" if i == 1 else "FINISHED",
            metrics={"average_precision": 0.5 + i / 20, "roc_auc": 0.9},
            params={"model_type": "hgb", "n_jobs": "-1", "note": f'=HYPERLINK("x{i}")'},
        )
        for i, age in enumerate(ages)
    ]
    monitoring = [
        log_run(client, ids["monitoring"], "m0", now - HOUR_MS, status="FAILED"),
        log_run(client, ids["monitoring"], "m1", now - 2 * HOUR_MS, metrics={"drift": 0.1}),
    ]
    client.create_registered_model(DEFAULT_MODEL_NAME)
    for run_id, alias in ((training[4], "Production"), (training[5], "Staging")):
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=run_id).version
        promote_model(client, DEFAULT_MODEL_NAME, version, alias)
    return Store(manager, training, monitoring, training[1], training[4], training[5])


@pytest.fixture(scope="module")
def populated_sqlite(tmp_path_factory: pytest.TempPathFactory, _template_db: Path):
    """A populated SQLite store built once per module; tests get a copy of it."""
    root = tmp_path_factory.mktemp("dashboard-store")
    shutil.copy(_template_db, root / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUDKIT_HOME", str(root))  # artifact root of the experiments
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        built = populate_store(MlflowManager(f"sqlite:///{root / 'mlflow.db'}"))
    return root / "mlflow.db", built


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str, manager, fraudkit_home: Path) -> Store:
    """The populated store on the test's backend (a server is populated per test)."""
    if backend == "server":
        return populate_store(manager)
    db, built = request.getfixturevalue("populated_sqlite")
    shutil.copy(db, fraudkit_home / "mlflow.db")
    return replace(built, manager=manager)
