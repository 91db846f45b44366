"""The SQL fast path gives the public API's answers, and only on the schema it knows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric
from support import dashboard_store
from support.dashboard_store import sqlite_only

from fraudkit import dashboard
from fraudkit.dashboard import fastpath

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


@sqlite_only
def test_fast_path_gives_the_api_answers(store):
    fast, api = dashboard.summarise(), dashboard.summarise(fast=False)
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
        dashboard.summarise().experiments, dashboard.summarise(fast=False).experiments
    )


@sqlite_only
def test_fast_path_needs_the_installed_schema_revision(store, tmp_path):
    from alembic.script import ScriptDirectory
    from mlflow.store import db_migrations
    from sqlalchemy import create_engine, text

    head = ScriptDirectory(str(Path(db_migrations.__file__).parent)).get_current_head()
    assert fastpath.schema_head() == head
    copy = tmp_path / "old.db"
    shutil.copy(store.manager.tracking_uri[len("sqlite:///") :], copy)
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    engine.dispose()
    assert fastpath.sql_engine(f"sqlite:///{copy}") is None
    assert fastpath.sql_engine(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()
