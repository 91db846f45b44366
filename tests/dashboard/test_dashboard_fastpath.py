"""The SQL fast path gives the public API's answers, and only on the schema it knows."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric
from support import dashboard_store
from support.dashboard_store import DAY_MS, log_run, sqlite_only

from fraudkit import dashboard
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.core.exceptions import RegistryError
from fraudkit.dashboard import fastpath, fastregistry, records
from fraudkit.tracking.history import KEY_METRICS

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store
KEY = "average_precision"


def _uri(store) -> str:
    return store.manager.tracking_uri


def _assert_registry_answers_agree() -> None:
    """Registry and comparisons: fast frames and records equal the public API's."""
    pd.testing.assert_frame_equal(
        dashboard.registry_overview(), dashboard.registry_overview(fast=False)
    )
    assert dashboard.registry_records() == dashboard.registry_records(fast=False)
    for versions in (None, [2, 1], ["1"]):
        fast = dashboard.compare_versions(versions=versions)
        pd.testing.assert_frame_equal(
            fast, dashboard.compare_versions(versions=versions, fast=False)
        )
        records = dashboard.compare_records(versions=versions)
        assert records == dashboard.compare_records(versions=versions, fast=False)
        assert [r["label"] for r in records] == list(fast.index)


@sqlite_only
def test_fast_path_gives_the_api_answers(store):
    fast, api = dashboard.summarise(), dashboard.summarise(fast=False)
    pd.testing.assert_frame_equal(fast.experiments, api.experiments)
    pd.testing.assert_frame_equal(fast.models, api.models)
    assert fast.to_dict() == api.to_dict()
    for kind in (None, "training", "monitoring"):
        pd.testing.assert_frame_equal(
            dashboard.runs_frame(kind), dashboard.runs_frame(kind, fast=False)
        )
    assert records.fast_registry() is not None  # the fast path did answer
    _assert_registry_answers_agree()


@sqlite_only
def test_fast_registry_matches_the_api_on_odd_versions(store):
    client = store.manager.client
    # A third version with its own tags and no source run, a deleted fourth, a metric NaN,
    # a second model, and an alias on the third version.
    run = client.get_run(store.staging)
    client.log_batch(store.staging, metrics=[Metric("fraud_f1", float("nan"), 1, 0)])
    third = client.create_model_version(DEFAULT_MODEL_NAME, f"{run.info.artifact_uri}/m3")
    client.set_model_version_tag(DEFAULT_MODEL_NAME, third.version, "fraudkit.model_type", "lr")
    client.set_registered_model_alias(DEFAULT_MODEL_NAME, "challenger", third.version)
    fourth = client.create_model_version(DEFAULT_MODEL_NAME, f"{run.info.artifact_uri}/m4")
    client.delete_model_version(DEFAULT_MODEL_NAME, fourth.version)
    client.create_registered_model("another_model")
    client.create_model_version(
        "another_model", f"{run.info.artifact_uri}/m5", run_id=store.backing
    )
    _assert_registry_answers_agree()
    pd.testing.assert_frame_equal(
        dashboard.summarise().models, dashboard.summarise(fast=False).models
    )
    overview = dashboard.registry_overview().set_index(["model", "version"])
    assert overview.loc[(DEFAULT_MODEL_NAME, 3), "aliases"] == "challenger"
    assert overview.loc[(DEFAULT_MODEL_NAME, 3), "model_type"] == "lr"
    assert (DEFAULT_MODEL_NAME, 4) not in overview.index
    compared = dashboard.compare_records(versions=[3, 2])
    assert compared[0]["run_id"] is None and compared[0]["alias"] == "challenger"
    assert compared[1]["fraud_f1"] is None and compared[2]["average_precision"] is None


@sqlite_only
def test_fast_summary_breaks_ties_as_the_api_does(store):
    client = store.manager.client
    training = client.get_experiment_by_name("credit_card_fraud_detection").experiment_id
    now = int(time.time() * 1000)
    # Ties with t5's best 0.75, newer than t5: the newest of them is the best run.
    tied = [
        log_run(client, training, f"tie{i}", now - (5 + i) * DAY_MS, metrics={KEY: 0.75})
        for i in range(2)
    ]
    # A run without metrics and one whose key metric is NaN never win.
    log_run(client, training, "blank", now - 6 * DAY_MS)
    log_run(client, training, "nan", now - 7 * DAY_MS, metrics={KEY: float("nan")})
    fast, api = dashboard.summarise(), dashboard.summarise(fast=False)
    assert fast.to_dict() == api.to_dict()
    row = fast.experiments.set_index("experiment_type").loc["training"]
    assert (row["best_run_id"], row["best_run_name"], row["total"]) == (tied[0], "tie0", 10)


def test_registry_metrics_are_the_history_key_metrics():
    assert records.REGISTRY_METRICS == KEY_METRICS


@sqlite_only
def test_missing_model_version_or_alias_falls_back_to_the_api_errors(store):
    # The fast path answers only what exists; the public API raises the error that says so.
    assert records.fast_comparison("no_such_model") is None
    assert records.fast_comparison(DEFAULT_MODEL_NAME, versions=[1, 9]) is None
    assert records.fast_comparison(DEFAULT_MODEL_NAME, versions=[]) is None
    assert records.fast_comparison(DEFAULT_MODEL_NAME, stages=["Production"]) is not None
    store.manager.client.delete_registered_model_alias(DEFAULT_MODEL_NAME, "staging")
    assert records.fast_comparison(DEFAULT_MODEL_NAME) is None
    with pytest.raises(RegistryError, match="no 'staging' alias"):
        dashboard.compare_records()


@sqlite_only
def test_a_store_with_prompts_is_left_to_the_api(store):
    client = store.manager.client
    client.register_prompt("a_prompt", "Is {{transaction}} fraud?")
    with fastpath.connect(_uri(store), True) as sql, sql.session() as query:
        assert fastregistry.read_registry(query) is None
    assert records.fast_registry() is None
    models = dashboard.summarise().models
    assert list(models["model"]) == [DEFAULT_MODEL_NAME]  # MLflow leaves prompts out
    assert [r["model"] for r in dashboard.registry_records()] == [DEFAULT_MODEL_NAME] * 2


@sqlite_only
def test_a_locked_store_is_not_read(store, monkeypatch):
    monkeypatch.setattr(fastpath, "_SQLITE_TIMEOUT_S", 0.05)
    with fastpath.connect(_uri(store), True) as sql:
        assert sql is not None
        holder = sqlite3.connect(_uri(store)[len("sqlite:///") :], isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # nobody else can even read
        try:
            with pytest.raises(fastpath.FastPathError), sql.session() as query:
                fastpath.read_rows(query, ["0"], None)
            # Nor is a locked store vouched for: its revision cannot be read.
            assert fastpath.open_store(_uri(store)) is None
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with sql.session() as query:  # the same store reads again once the lock is gone
            assert len(fastpath.read_rows(query, ["0"], None).runs) == 0


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
        dashboard.summarise().experiments, dashboard.summarise(fast=False).experiments
    )


def _stamp(db: Path, revision: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()


@sqlite_only
def test_fast_path_needs_a_tested_schema_revision(store, tmp_path):
    from alembic.script import ScriptDirectory
    from mlflow.store import db_migrations

    scripts = ScriptDirectory(str(Path(db_migrations.__file__).parent))
    head = scripts.get_current_head()
    assert fastpath.schema_head() == head
    # The installed MLflow's schema is one the tests exercise, so they test the fast path.
    assert head in fastpath.TESTED_REVISIONS
    copy = tmp_path / "old.db"
    shutil.copy(store.manager.tracking_uri[len("sqlite:///") :], copy)
    with fastpath.connect(f"sqlite:///{copy}", True) as sql:
        assert sql is not None and sql.dialect == "sqlite"
    for revision in ("elsewhere", scripts.get_revision(head).down_revision):
        _stamp(copy, revision)
        assert fastpath.open_store(f"sqlite:///{copy}") is None
    assert fastpath.open_store(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_text("not a database")
    assert fastpath.open_store(f"sqlite:///{tmp_path / 'junk.db'}") is None
    with fastpath.connect(_uri(store), fast=False) as sql:
        assert sql is None


def _answers() -> list[object]:
    """The dashboard's answers by whichever path applies."""
    return [
        dashboard.summarise().to_dict(),
        dashboard.registry_records(),
        dashboard.compare_records(),
        dashboard.to_records(dashboard.runs_frame("training")),  # NaN as None: comparable
        dashboard.plan_cleanup("training", keep_last_n=1).to_dict(),
    ]


@sqlite_only
def test_an_untested_revision_uses_the_api_and_says_so_once(store, monkeypatch, caplog):
    assert records.fast_registry() is not None
    fast = _answers()
    # As after an MLflow upgrade whose migration the fast path has not been tested on.
    monkeypatch.setattr(fastpath, "TESTED_REVISIONS", ())
    monkeypatch.setattr(fastpath, "_untested_logged", set())
    caplog.set_level(logging.DEBUG, logger=fastpath.__name__)
    assert records.fast_registry() is None
    fallback = _answers()
    assert fallback == fast
    plan = dashboard.plan_cleanup("training", keep_last_n=1)
    assert dashboard.execute_cleanup(plan).method == "api"
    said = [r for r in caplog.records if r.name == fastpath.__name__]
    assert len(said) == 1 and said[0].levelno == logging.DEBUG
    message = said[0].getMessage()
    assert fastpath.schema_head() in message and "client API" in message


@sqlite_only
def test_workspaces_turn_the_fast_path_off(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "false")
    assert fastpath.open_store(_uri(store)) is not None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
    assert fastpath.open_store(_uri(store)) is None
