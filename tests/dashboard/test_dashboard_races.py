"""Cleanup racing a registration: a run that backs a model version is never deleted.

The store itself audits every deletion: a trigger records any run that turns deleted while
it is RUNNING or while a (live) model version names it, inside the deleting transaction,
so the audit sees exactly what the delete saw.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from support import dashboard_store
from support.dashboard_store import DAY_MS, log_run, sqlite_only

from fraudkit import dashboard
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.dashboard import fastpath

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store

ROUNDS = 20  # enough interleavings to catch a missing check, within a few seconds
DELAY_STEP_S = 0.002

_AUDIT = f"""
CREATE TABLE lost_runs (run_uuid TEXT NOT NULL);
CREATE TRIGGER audit_run_deletion AFTER UPDATE OF lifecycle_stage ON runs
WHEN OLD.lifecycle_stage = 'active' AND NEW.lifecycle_stage = 'deleted' AND (
    OLD.status = 'RUNNING' OR EXISTS (
        SELECT 1 FROM model_versions v
        WHERE v.run_id = NEW.run_uuid AND v.current_stage <> '{fastpath.DELETED_STAGE}'
    )
)
BEGIN INSERT INTO lost_runs VALUES (NEW.run_uuid); END;
"""


def _audited(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(_AUDIT)
    conn.close()


def _lost(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        found = [row[0] for row in conn.execute("SELECT run_uuid FROM lost_runs")]
    conn.close()
    return found


def _race(store, experiment_id: str, round_: int) -> tuple[str, bool]:
    """Plan a cleanup of two old runs, then register one while the cleanup executes.

    Returns the registered run and whether the cleanup deleted it (it may, when the
    registration came after the delete: MLflow lets a deleted run back a version).
    """
    client = store.manager.client
    start = int(time.time() * 1000) - 100 * DAY_MS
    runs = [log_run(client, experiment_id, f"old{round_}-{i}", start - i) for i in range(2)]
    plan = dashboard.plan_cleanup("training", older_than="60d")
    assert set(plan.to_delete) == set(runs)
    gate = threading.Barrier(2)
    errors: list[BaseException] = []

    def register() -> None:
        try:
            gate.wait()
            source = f"{client.get_run(runs[0]).info.artifact_uri}/model"
            client.create_model_version(DEFAULT_MODEL_NAME, source, run_id=runs[0])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=register)
    thread.start()
    gate.wait()
    # Registering takes some milliseconds: delaying the delete by 0 to 38 ms moves it from
    # before the registration to after it across the rounds.
    time.sleep(round_ * DELAY_STEP_S)
    result = dashboard.execute_cleanup(plan)
    thread.join(timeout=30)
    assert not errors and not thread.is_alive()
    assert result.method == "sql" and runs[1] in result.deleted
    return runs[0], runs[0] in result.deleted


@sqlite_only
def test_registering_during_cleanup_never_loses_the_run(store):
    db = Path(store.manager.tracking_uri[len("sqlite:///") :])
    _audited(db)
    experiment_id = store.manager.client.get_run(store.training[0]).info.experiment_id
    began = time.monotonic()
    outcomes = [_race(store, experiment_id, i) for i in range(ROUNDS)]
    assert _lost(db) == []  # no run was deleted while a version named it
    for run_id, deleted in outcomes:
        stage = store.manager.client.get_run(run_id).info.lifecycle_stage
        assert stage == ("deleted" if deleted else "active")
    assert time.monotonic() - began < 60


@sqlite_only
def test_the_audit_catches_a_delete_that_does_not_check(store):
    # The audit is not vacuous: an unchecked UPDATE (the old fast path) is caught.
    db = Path(store.manager.tracking_uri[len("sqlite:///") :])
    _audited(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE runs SET lifecycle_stage = 'deleted' WHERE run_uuid = ?", (store.backing,)
        )
    conn.close()
    assert _lost(db) == [store.backing]
