"""fraudkit.dashboard.queries on the embedded SQLite store and a real mlflow server."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from support import dashboard_store
from support.dashboard_store import sqlite_only

from fraudkit import dashboard
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.core.exceptions import (
    ConfigurationError,
    DataValidationError,
    RegistryError,
    TrackingError,
)
from fraudkit.dashboard import fastpath, records
from fraudkit.tracking.history import read_compared, read_versions

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


def test_summary_counts_latest_and_best(store, backend):
    # A server is read through the public API; the SQLite store through the fast path.
    with fastpath.connect(store.manager.tracking_uri, True) as sql:
        assert (sql is None) == (backend == "server")
    result = dashboard.summarise()
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
    assert result.experiments["latest_start"].dt.tz is not None  # the frame has timestamps


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
def test_fast_path_and_client_read_equal_version_records(store):
    # One function builds each answer from VersionRecords, so equal records are all the
    # two paths must agree on. Add a version without a source run, tagged and aliased,
    # and a second model backed by an existing run.
    client = store.manager.client
    artifacts = client.get_run(store.staging).info.artifact_uri
    third = client.create_model_version(DEFAULT_MODEL_NAME, f"{artifacts}/m3")
    client.set_model_version_tag(DEFAULT_MODEL_NAME, third.version, "fraudkit.model_type", "lr")
    client.set_registered_model_alias(DEFAULT_MODEL_NAME, "challenger", third.version)
    client.create_registered_model("another_model")
    client.create_model_version("another_model", f"{artifacts}/m4", run_id=store.backing)

    fast = records.fast_registry(store.manager)
    assert fast is not None  # the fast path did answer
    assert fast == read_versions(client)
    assert [(r.model, r.version) for r in fast] == [
        ("another_model", 1),
        (DEFAULT_MODEL_NAME, 1),
        (DEFAULT_MODEL_NAME, 2),
        (DEFAULT_MODEL_NAME, 3),
    ]
    assert fast[-1].run is None and fast[-1].aliases == ("challenger",)
    for versions in (None, [2, 1], ["1"], [3, 2]):
        chosen = records.fast_comparison(
            DEFAULT_MODEL_NAME, versions=versions, manager=store.manager
        )
        assert chosen is not None
        assert chosen == read_compared(client, DEFAULT_MODEL_NAME, versions=versions)


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


def _monitor(store, version: int, values: list[float]) -> str:
    """A monitoring run linked to ``version`` logging average_precision per window."""
    from mlflow.entities import Metric, RunTag

    from fraudkit.tracking.registry import link_run_to_version

    client = store.manager.client
    experiment = client.get_experiment_by_name("credit_card_fraud_monitoring").experiment_id
    run_id = client.create_run(experiment, run_name="watch").info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("average_precision", v, now + i, i) for i, v in enumerate(values)]
    metrics.append(Metric("average_precision", 0.0, now - 1, 0))  # an older value at window 0
    tags = [RunTag("fraudkit.experiment_type", "monitoring")]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    link_run_to_version(client, run_id, DEFAULT_MODEL_NAME, version)
    return run_id


@sqlite_only
def test_history_table_one_metric_by_version_and_window(store):
    watch = _monitor(store, 1, [0.61, 0.62, 0.58])
    table = dashboard.history_table(dashboard.model_history())
    assert list(table.columns) == ["version", "source", "run_id", "logged", "w0", "w1", "w2"]
    rows = [tuple(r) for r in table[["version", "source", "run_id"]].itertuples(index=False)]
    assert rows == [
        (1, "training", store.backing),
        (1, "monitoring", watch),
        (2, "training", store.staging),
    ]
    assert list(table.loc[1, ["w0", "w1", "w2"]]) == [0.61, 0.62, 0.58]  # latest at window 0
    assert table.loc[0, "w0"] == pytest.approx(0.7) and pd.isna(table.loc[0, "w1"])
    roc = dashboard.history_table(dashboard.model_history(), "roc_auc")
    assert list(roc["run_id"]) == [store.backing, store.staging]
    with pytest.raises(DataValidationError, match="average_precision, roc_auc"):
        dashboard.history_table(dashboard.model_history(), "drift")
    empty = dashboard.history_table(dashboard.model_history().head(0))
    assert empty.empty and list(empty.columns)[:4] == ["version", "source", "run_id", "logged"]


def test_package_exports_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys, fraudkit.dashboard as d; "
        "assert 'mlflow' not in sys.modules and 'fraudkit.cli' not in sys.modules; "
        "import fraudkit.dashboard.fastpath; "
        "assert 'mlflow.tracking' not in sys.modules; "
        "assert d.summarise.__module__ == 'fraudkit.dashboard.answers'; "
        "assert all(getattr(d, name) is not None for name in d.__all__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
