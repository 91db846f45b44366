"""fraudkit.dashboard on the embedded SQLite store and a real mlflow server.

The SQL fast path is compared with the public-API path (the reference) on the same data.
"""

from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from fraudkit import dashboard, registry
from fraudkit.config import DEFAULT_MODEL_NAME
from fraudkit.exceptions import ConfigurationError, RegistryError, TrackingError
from fraudkit.tracking import MlflowManager

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


def _log_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    start: int,
    *,
    status: str = "FINISHED",
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
) -> str:
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
        _log_run(
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
        _log_run(client, ids["monitoring"], "m0", now - HOUR_MS, status="FAILED"),
        _log_run(client, ids["monitoring"], "m1", now - 2 * HOUR_MS, metrics={"drift": 0.1}),
    ]
    client.create_registered_model(DEFAULT_MODEL_NAME)
    for run_id, alias in ((training[4], "Production"), (training[5], "Staging")):
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=run_id).version
        registry.promote_model(client, DEFAULT_MODEL_NAME, version, alias)
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


def _lifecycle(client: MlflowClient, run_ids: list[str]) -> dict[str, str]:
    return {r: client.get_run(r).info.lifecycle_stage for r in run_ids}


def _deleted_rows(uri: str) -> set[str]:
    """Runs of an SQLite store marked deleted with a deletion time."""
    from sqlalchemy import create_engine, text

    engine = create_engine(uri)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'deleted'"
                " AND deleted_time IS NOT NULL"
            )
        )
        found = {row[0] for row in rows}
    engine.dispose()
    return found


# -- summary ---------------------------------------------------------------------------


def test_summary_counts_latest_and_best(store, backend):
    # A server is read through the public API; the SQLite store through the fast path.
    assert (dashboard._sql_engine(store.manager.tracking_uri) is None) == (backend == "server")
    result = dashboard.summarize()
    rows = result.experiments.set_index("experiment_type")
    training = rows.loc["training"]
    assert (training["total"], training["running"], training["finished"]) == (6, 1, 5)
    assert training["latest_run_id"] == store.training[0]
    assert training["latest_run_name"] == "t0"
    assert training["best_run_id"] == store.training[5]
    assert training["best_average_precision"] == pytest.approx(0.75)
    monitoring = rows.loc["monitoring"]
    assert (monitoring["total"], monitoring["failed"], monitoring["finished"]) == (2, 1, 1)
    assert pd.isna(monitoring["best_run_id"])  # no run logged the key metric
    assert rows.loc["retraining", "total"] == 0
    models = result.models.set_index("model")
    assert models.loc[DEFAULT_MODEL_NAME, "versions"] == 2
    assert models.loc[DEFAULT_MODEL_NAME, "aliases"] == "production=1,staging=2"
    payload = result.to_dict()
    assert payload["experiments"][0]["latest_start"].endswith("Z")


@sqlite_only
def test_fast_path_gives_the_api_answers(store):
    fast, api = dashboard.summarize(), dashboard.summarize(fast=False)
    pd.testing.assert_frame_equal(fast.experiments, api.experiments)
    pd.testing.assert_frame_equal(fast.models, api.models)
    for kind in (None, "training", "monitoring"):
        pd.testing.assert_frame_equal(
            dashboard.runs_frame(kind), dashboard.runs_frame(kind, fast=False)
        )


@sqlite_only
def test_fast_path_handles_nan_metrics_and_names_from_tags(store):
    client = store.manager.client
    run_id = store.training[2]
    client.log_batch(run_id, metrics=[Metric("average_precision", float("nan"), 1, 1)])
    client.set_tag(run_id, "mlflow.runName", "renamed")
    fast, api = dashboard.runs_frame("training"), dashboard.runs_frame("training", fast=False)
    pd.testing.assert_frame_equal(fast, api)
    assert np.isnan(fast.set_index("run_id").loc[run_id, "metrics.average_precision"])
    pd.testing.assert_frame_equal(
        dashboard.summarize().experiments, dashboard.summarize(fast=False).experiments
    )


@sqlite_only
def test_fast_path_needs_the_installed_schema_revision(store, tmp_path):
    from alembic.script import ScriptDirectory
    from mlflow.store import db_migrations
    from sqlalchemy import create_engine, text

    head = ScriptDirectory(str(Path(db_migrations.__file__).parent)).get_current_head()
    assert dashboard._mlflow_schema_head() == head
    copy = tmp_path / "old.db"
    shutil.copy(store.manager.tracking_uri[len("sqlite:///") :], copy)
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    engine.dispose()
    assert dashboard._sql_engine(f"sqlite:///{copy}") is None
    assert dashboard._sql_engine(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()


# -- runs frame and export -------------------------------------------------------------


@sqlite_only
def test_runs_frame_columns_and_filter(store):
    frame = dashboard.runs_frame("training")
    assert list(frame["run_id"]) == store.training  # newest first
    assert set(frame["experiment_type"]) == {"training"}
    assert frame["metrics.average_precision"].dtype == float
    assert {"params.n_jobs", "tags.fraudkit.label"} <= set(frame.columns)
    filtered = dashboard.runs_frame("training", filter_string="metrics.average_precision > 0.62")
    assert list(filtered["run_id"]) == store.training[3:]
    assert len(dashboard.runs_frame()) == 8
    with pytest.raises(TrackingError):
        dashboard.runs_frame(filter_string="metrics.average_precision >>> 1")
    with pytest.raises(ConfigurationError, match="unknown experiment type"):
        dashboard.runs_frame("trianing")


def _assert_same_column(back: pd.Series, written: pd.Series) -> None:
    """Compare a column read back from CSV/JSON text with the column written."""
    if isinstance(written.dtype, pd.DatetimeTZDtype):
        parsed = pd.to_datetime(back.replace("", None), utc=True, format="ISO8601")
        back, written = parsed.dt.as_unit("ms"), written.dt.as_unit("ms")
    elif pd.api.types.is_float_dtype(written):
        back = back.astype(float)
    else:
        back, written = back.fillna("").astype(object), written.fillna("").astype(object)
    pd.testing.assert_series_equal(back, written, check_names=False, check_dtype=False)


@sqlite_only
@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_round_trips(store, tmp_path, fmt):
    frame = dashboard.runs_frame("training")
    result = dashboard.export_runs(tmp_path / "out" / f"runs.{fmt}", "training")
    assert (result.format, result.rows, result.columns) == (fmt, 6, frame.shape[1])
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(result.path), frame)
        return
    if fmt == "csv":
        back = pd.read_csv(result.path, dtype=str, keep_default_na=False)
        frame = dashboard.neutralise_formulas(frame)  # what a CSV is meant to hold
    else:
        back = pd.read_json(io.StringIO(result.path.read_text()), orient="records", dtype=False)
    assert list(back.columns) == list(frame.columns)
    for column in frame.columns:
        _assert_same_column(back[column], frame[column])


@sqlite_only
def test_csv_export_neutralises_formulas_only(store, tmp_path):
    path = dashboard.export_runs(tmp_path / "runs.csv", "training").path
    back = pd.read_csv(path)
    assert back["params.note"].str.startswith("'=HYPERLINK").all()
    assert (back["params.n_jobs"] == -1).all()  # a negative number stays a number
    assert back["metrics.average_precision"].dtype == float


def test_neutralise_formulas():
    frame = pd.DataFrame(
        {
            "text": ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "-1.5e3", None],
            "number": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan],
            "mixed": ["=x", 1, -2, None, "ok", "+1", "-", "", "@"],
        }
    )
    out = dashboard.neutralise_formulas(frame)
    assert list(out["text"][:6]) == ["'=1+2", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert list(out["text"][6:8]) == ["plain", "-1.5e3"]
    assert pd.isna(out["text"].iloc[8])
    pd.testing.assert_series_equal(out["number"], frame["number"])
    assert list(out["mixed"]) == ["'=x", 1, -2, None, "ok", "+1", "'-", "", "'@"]
    assert frame["text"].iloc[0] == "=1+2"  # input untouched


@sqlite_only
def test_export_format_choice(store, tmp_path):
    result = dashboard.export_runs(tmp_path / "runs.data", fmt="JSON")
    assert result.format == "json" and result.rows == 8
    with pytest.raises(ConfigurationError, match="cannot tell the export format"):
        dashboard.export_runs(tmp_path / "runs.txt")
    with pytest.raises(ConfigurationError, match="unknown export format"):
        dashboard.export_runs(tmp_path / "runs.csv", fmt="xlsx")


# -- cleanup ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hours"), [("30d", 720), ("12h", 12), ("2w", 336), (" 1.5D ", 36)]
)
def test_parse_age(text, hours):
    assert dashboard.parse_age(text).total_seconds() == hours * 3600


@pytest.mark.parametrize("text", ["30", "d", "5 years", "-1d", "3m"])
def test_parse_age_rejects(text):
    with pytest.raises(ConfigurationError, match="cannot read age"):
        dashboard.parse_age(text)


def test_cleanup_keeps_newest_and_never_touches_protected_runs(store):
    client = store.manager.client
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    t = store.training
    assert plan.kept == (t[0],)
    assert plan.protected == (t[1], t[4], t[5])  # RUNNING, production, staging
    assert plan.to_delete == (t[2], t[3])
    reasons = plan.runs.set_index("run_id")["reason"]
    assert reasons[t[1]] == "running"
    assert reasons[t[4]] == f"backs {DEFAULT_MODEL_NAME} v1"
    assert _lifecycle(client, t) == dict.fromkeys(t, "active")  # planning changes nothing
    done = []
    result = dashboard.execute_cleanup(plan, progress=done.append)
    assert result.deleted == plan.to_delete and sum(done) == 2
    stages = _lifecycle(client, t + store.monitoring)
    assert {r for r, stage in stages.items() if stage == "deleted"} == {t[2], t[3]}
    counts = result.to_dict()["counts"]
    assert counts == {"to_delete": 2, "protected": 3, "kept": 1}


@sqlite_only
def test_cleanup_older_than(store):
    t = store.training
    plan = dashboard.plan_cleanup("training", older_than="30d")
    assert (plan.to_delete, plan.protected) == ((), (t[5],))
    plan = dashboard.plan_cleanup("training", older_than="36h", keep_last_n=3)
    assert plan.to_delete == (t[3],) and plan.protected == (t[4], t[5])
    assert plan.kept == (t[0], t[1], t[2])
    assert dashboard.plan_cleanup("monitoring", older_than="1w").to_delete == ()


@sqlite_only
def test_cleanup_rejects_bad_rules(store, monkeypatch):
    with pytest.raises(ConfigurationError, match="keep-last-n"):
        dashboard.plan_cleanup("training")
    with pytest.raises(ConfigurationError, match=">= 0"):
        dashboard.plan_cleanup("training", keep_last_n=-1)
    with pytest.raises(ConfigurationError, match="unknown experiment type"):
        dashboard.plan_cleanup("nope", keep_last_n=1)
    # A server cannot purge: refused before anything is read or deleted.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(TrackingError, match="mlflow gc"):
        dashboard.plan_cleanup("training", keep_last_n=1, permanent=True)


@sqlite_only
def test_cleanup_fast_path_deletes_the_api_set(store, tmp_path):
    db = store.manager.tracking_uri[len("sqlite:///") :]
    copy_uri = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copy(db, tmp_path / "copy.db")
    other = MlflowManager(copy_uri)
    plans = [
        dashboard.plan_cleanup("training", keep_last_n=0, manager=m, fast=fast)
        for m, fast in ((store.manager, True), (other, False))
    ]
    assert plans[0].to_dict() == plans[1].to_dict()
    fast = dashboard.execute_cleanup(plans[0])
    api = dashboard.execute_cleanup(plans[1], manager=other, fast=False)
    assert (fast.method, api.method) == ("sql", "api")
    assert fast.deleted == api.deleted == (store.training[0], *store.training[2:4])
    # Same rows deleted, each with the deleted_time `mlflow gc --older-than` relies on.
    assert _deleted_rows(store.manager.tracking_uri) == _deleted_rows(copy_uri) == set(fast.deleted)
    after_api = dashboard.runs_frame("training", manager=other, fast=False)
    pd.testing.assert_frame_equal(dashboard.runs_frame("training"), after_api)


@sqlite_only
def test_cleanup_skips_runs_that_started_running_after_the_plan(store):
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    store.manager.client.update_run(plan.to_delete[0], "RUNNING")
    result = dashboard.execute_cleanup(plan)
    assert result.deleted == plan.to_delete[1:]
    assert store.manager.client.get_run(plan.to_delete[0]).info.lifecycle_stage == "active"


@sqlite_only
def test_cleanup_permanent(store, tmp_path):
    client = store.manager.client
    victim = store.training[2]
    (tmp_path / "notes.txt").write_text("x")
    client.log_artifact(victim, str(tmp_path / "notes.txt"))
    folder = Path(client.get_run(victim).info.artifact_uri[len("file://") :])
    assert (folder / "notes.txt").is_file()
    plan = dashboard.plan_cleanup("training", keep_last_n=1, permanent=True)
    result = dashboard.execute_cleanup(plan)
    assert result.deleted == plan.to_delete and result.artifacts_not_deleted == ()
    assert not folder.exists()
    for run_id in plan.to_delete:
        with pytest.raises(Exception, match="not found"):
            client.get_run(run_id)
    assert client.get_run(store.training[4]).info.lifecycle_stage == "active"


# -- registry, compare, history --------------------------------------------------------


@sqlite_only
def test_registry_and_compare(store):
    overview = dashboard.registry_overview()
    assert list(overview["version"]) == [1, 2]
    assert list(overview["aliases"]) == ["production", "staging"]
    assert list(overview["run_id"]) == [store.backing, store.staging]
    compared = dashboard.compare_versions()
    assert list(compared.index) == ["production", "staging", "difference"]
    assert compared.loc["difference", "average_precision"] == pytest.approx(0.05)
    by_version = dashboard.compare_versions(versions=[2, 1])
    assert list(by_version.index) == ["v2", "v1", "difference"]
    store.manager.client.delete_registered_model_alias(DEFAULT_MODEL_NAME, "staging")
    with pytest.raises(RegistryError, match="no 'staging' alias"):
        dashboard.compare_versions()
    with pytest.raises(RegistryError, match="not found"):
        dashboard.compare_versions("no_such_model")


@sqlite_only
def test_model_history_and_plot(store, tmp_path):
    history = dashboard.model_history()
    assert set(history["version"]) == {1, 2}
    assert set(history["metric"]) == {"average_precision", "roc_auc"}
    only = dashboard.model_history(metric="roc_auc")
    assert set(only["metric"]) == {"roc_auc"} and len(only) == 2
    path = dashboard.save_history_plot(history, tmp_path / "plots" / "history.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RegistryError, match="dashboard registry"):
        dashboard.model_history("no_such_model")
