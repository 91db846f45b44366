"""fraudkit.dashboard.cleanup: plans, soft deletes, and permanent deletes by `mlflow gc`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow import MlflowClient
from support import dashboard_store
from support.dashboard_store import sqlite_only

from fraudkit import dashboard
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.core.exceptions import ConfigurationError, TrackingError
from fraudkit.dashboard import cleanup
from fraudkit.tracking.manager import MlflowManager

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


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


def _local(uri: str) -> Path:
    return Path(urlparse(uri).path)


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
@pytest.mark.parametrize(("fast", "method"), [(True, "sql"), (False, "api")])
def test_cleanup_skips_runs_that_started_running_after_the_plan(store, fast, method):
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    store.manager.client.update_run(plan.to_delete[0], "RUNNING")
    result = dashboard.execute_cleanup(plan, fast=fast)
    assert result.method == method
    assert result.deleted == plan.to_delete[1:] and result.skipped == plan.to_delete[:1]
    assert store.manager.client.get_run(plan.to_delete[0]).info.lifecycle_stage == "active"


@sqlite_only
@pytest.mark.parametrize(("fast", "method"), [(True, "sql"), (False, "api")])
def test_cleanup_spares_a_run_registered_after_the_plan(store, fast, method):
    client = store.manager.client
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    assert plan.to_delete == (store.training[2], store.training[3])
    late = plan.to_delete[0]
    source = f"{client.get_run(late).info.artifact_uri}/model"
    client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=late)
    # A version deleted since (MLflow keeps its row) protects nothing.
    gone = client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=plan.to_delete[1])
    client.delete_model_version(DEFAULT_MODEL_NAME, gone.version)
    done = []
    result = dashboard.execute_cleanup(plan, fast=fast, progress=done.append)
    assert result.method == method and sum(done) == 2
    assert result.deleted == plan.to_delete[1:] and result.skipped == (late,)
    assert _lifecycle(client, list(plan.to_delete)) == {
        late: "active",
        plan.to_delete[1]: "deleted",
    }
    summary = result.to_dict()
    assert (summary["skipped"], summary["skipped_count"], summary["deleted_count"]) == (
        [late],
        1,
        1,
    )


@sqlite_only
def test_cleanup_permanent(store, tmp_path):
    client = store.manager.client
    victim = store.training[2]
    (tmp_path / "notes.txt").write_text("x")
    client.log_artifact(victim, str(tmp_path / "notes.txt"))
    folder = _local(client.get_run(victim).info.artifact_uri)
    assert (folder / "notes.txt").is_file()
    plan = dashboard.plan_cleanup("training", keep_last_n=1, permanent=True)
    result = dashboard.execute_cleanup(plan)
    assert result.deleted == plan.to_delete and result.artifacts_not_deleted == ()
    assert not folder.exists()
    for run_id in plan.to_delete:
        with pytest.raises(Exception, match="not found"):
            client.get_run(run_id)
    assert client.get_run(store.training[4]).info.lifecycle_stage == "active"


@sqlite_only
def test_cleanup_permanent_purges_logged_models_with_mlflow_gc(store, tmp_path, monkeypatch):
    client = store.manager.client
    t = store.training
    experiment_id = client.get_run(t[2]).info.experiment_id
    (tmp_path / "weights.bin").write_bytes(b"w")
    models = {}
    for run_id in (t[2], t[3], t[4]):
        model = client.create_logged_model(experiment_id, source_run_id=run_id)
        client.log_model_artifact(model.model_id, str(tmp_path / "weights.bin"))
        models[run_id] = model
    # A logged model behind a registered version stays, even when its run goes, whether
    # the version names it by models:/ URI or by its artifact location.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.manager.tracking_uri)  # resolves models:/
    kept = [client.create_logged_model(experiment_id, source_run_id=t[3]) for _ in range(2)]
    for source in (f"models:/{kept[0].model_id}", kept[1].artifact_location):
        client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=t[4])
    calls = []
    real_popen = subprocess.Popen

    def spy(command, **kwargs):
        calls.append((command, kwargs["env"]))
        return real_popen(command, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    monkeypatch.setattr(cleanup, "_GC_ARGUMENT_CHARS", 40)  # one run per `mlflow gc` call
    plan = dashboard.plan_cleanup("training", keep_last_n=1, permanent=True)
    assert plan.to_delete == (t[2], t[3])
    done = []
    result = dashboard.execute_cleanup(plan, progress=done.append)
    assert result.deleted == (t[2], t[3]) and sum(done) == 4  # soft delete, then purge
    assert result.logged_models_deleted == (models[t[2]].model_id, models[t[3]].model_id)
    assert result.artifacts_not_deleted == ()
    for run_id in (t[2], t[3]):
        with pytest.raises(Exception, match="not found"):
            client.get_logged_model(models[run_id].model_id)
        assert not _local(models[run_id].artifact_location).exists()
    assert _local(models[t[4]].artifact_location).exists()  # the protected run's model
    active = {m.model_id for m in client.search_logged_models([experiment_id])}
    assert active == {models[t[4]].model_id, *(m.model_id for m in kept)}  # registered ones stay
    # MLflow's own garbage collection did the purge, one call per batch, and the store
    # URI travelled in the environment, never on the command line `ps` shows.
    assert [command[2:4] for command, _ in calls] == [["mlflow", "gc"]] * 2
    for command, env in calls:
        assert env["MLFLOW_TRACKING_URI"] == store.manager.tracking_uri
        assert not any(store.manager.tracking_uri in part for part in command)
        assert "--backend-store-uri" not in command and "--experiment-ids" not in command


@sqlite_only
def test_cleanup_permanent_refuses_to_purge_deleted_experiments(store):
    client = store.manager.client
    other = client.create_experiment("someone_elses_experiment")
    client.delete_experiment(other)
    with pytest.raises(TrackingError, match="someone_elses_experiment"):
        dashboard.plan_cleanup("training", keep_last_n=1, permanent=True)
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    with pytest.raises(TrackingError, match="nothing was deleted"):
        dashboard.execute_cleanup(cleanup.CleanupPlan(**{**plan.__dict__, "permanent": True}))
    assert _lifecycle(client, store.training) == dict.fromkeys(store.training, "active")
    assert client.get_experiment(other).lifecycle_stage == "deleted"
    # Without --permanent nothing is purged, so the deleted experiment is no obstacle.
    assert dashboard.execute_cleanup(plan).deleted == plan.to_delete
