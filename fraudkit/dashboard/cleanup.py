"""Cleanup of old runs: plan which runs go, then soft-delete (and optionally purge) them.

Guarantees: planning changes nothing; a RUNNING run, or one that backs a registered
model version, is never deleted, checked again when deleting (a run restarted or a
version registered after the plan is skipped); deletion is MLflow's soft delete unless
``permanent``.
A permanent cleanup then hands the soft-deleted runs, and the logged models they
produced, to MLflow's own garbage collection (``mlflow gc``), which removes their rows
and artifacts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError, TrackingError
from fraudkit.dashboard import fastpath
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    Progress,
    as_time,
    experiment_ids,
    newest_first,
    read_tables,
    translated,
)
from fraudkit.tracking.store import find_run, paged, quote

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudkit.tracking.manager import MlflowManager

__all__ = ["CleanupPlan", "CleanupResult", "execute_cleanup", "parse_age", "plan_cleanup"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([hdw])")
_AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Characters of ids per `mlflow gc` call: Linux refuses a single argument over 128 KiB.
_GC_ARGUMENT_CHARS = 100_000
_GC_PURGED = re.compile(r"^(Run|Logged model) with ID (\S+) has been permanently deleted\.")
_GC_ARTIFACT_WARNING = "was raised during the deletion of a model artifact"


@dataclass(frozen=True, eq=False)
class CleanupPlan:
    """What :func:`execute_cleanup` would do to one experiment.

    Attributes
    ----------
    experiment_type : str
    experiment_id : str or None
        None when the experiment does not exist yet (nothing to do).
    to_delete, protected, kept : tuple of str
        Run ids, newest first. ``protected`` runs matched a deletion rule but are RUNNING
        or back a registered model version; they are never deleted.
    runs : DataFrame
        Every active run: run_id, run_name, status, start_time, artifact_uri, action
        (``delete``, ``protected`` or ``keep``) and reason.
    permanent : bool
        Whether deletion also purges the runs (rows and artifacts) with ``mlflow gc``.
    """

    experiment_type: str
    experiment_id: str | None
    keep_last_n: int | None
    older_than: str | None
    to_delete: tuple[str, ...]
    protected: tuple[str, ...]
    kept: tuple[str, ...]
    runs: pd.DataFrame = field(repr=False)
    permanent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the rules, the counts and the run ids of each group."""
        reasons = self.runs.set_index("run_id")["reason"].to_dict()
        return {
            "experiment_type": self.experiment_type,
            "experiment_id": self.experiment_id,
            "keep_last_n": self.keep_last_n,
            "older_than": self.older_than,
            "permanent": self.permanent,
            "counts": {
                "to_delete": len(self.to_delete),
                "protected": len(self.protected),
                "kept": len(self.kept),
            },
            "to_delete": list(self.to_delete),
            "protected": [{"run_id": r, "reason": reasons[r]} for r in self.protected],
            "kept": list(self.kept),
        }


@dataclass(frozen=True, eq=False)
class CleanupResult:
    """What :func:`execute_cleanup` did.

    Attributes
    ----------
    plan : CleanupPlan
    deleted : tuple of str
        Runs soft-deleted (and purged when ``plan.permanent``).
    method : str
        ``"sql"`` (one transaction on the store) or ``"api"`` (MLflow's delete_run).
    artifacts_not_deleted : tuple of str
        Purged runs and logged models whose artifacts ``mlflow gc`` could not reach (it
        carries on without them).
    logged_models_deleted : tuple of str
        Logged models of the deleted runs purged with them (``plan.permanent`` only);
        a logged model behind a registered model version is never among them.
    skipped : tuple of str
        Runs of ``plan.to_delete`` left alone because, when it came to deleting them,
        they were RUNNING, backed a registered model version, or were already deleted.
        Not an error: the plan was made before they changed.
    """

    plan: CleanupPlan
    deleted: tuple[str, ...]
    method: str
    artifacts_not_deleted: tuple[str, ...] = ()
    logged_models_deleted: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the plan's dict plus what was deleted."""
        return {
            **self.plan.to_dict(),
            "deleted": list(self.deleted),
            "deleted_count": len(self.deleted),
            "method": self.method,
            "artifacts_not_deleted": list(self.artifacts_not_deleted),
            "logged_models_deleted": list(self.logged_models_deleted),
            "skipped": list(self.skipped),
            "skipped_count": len(self.skipped),
        }


def parse_age(text: str) -> timedelta:
    """Parse an age such as ``30d``, ``12h`` or ``2w`` (hours, days, weeks).

    Parameters
    ----------
    text : str

    Returns
    -------
    timedelta

    Raises
    ------
    ConfigurationError
        If ``text`` is not a number followed by h, d or w.
    """
    match = _AGE.fullmatch(str(text).strip().lower())
    if match is None:
        raise ConfigurationError(
            f"cannot read age {text!r}; use a number and a unit, e.g. 12h, 30d or 2w"
        )
    return timedelta(**{_AGE_UNITS[match.group(2)]: float(match.group(1))})


def _protected_runs(client: MlflowClient) -> dict[str, str]:
    """``{run_id: "backs model vN"}`` for every run that backs a registered model version."""
    backing: dict[str, str] = {}
    for mv in paged(client.search_model_versions):
        if mv.run_id:
            backing.setdefault(mv.run_id, f"backs {mv.name} v{mv.version}")
    return backing


def _check_purge_supported(manager: MlflowManager) -> None:
    if config.is_remote(manager.tracking_uri):
        raise TrackingError(
            "permanent deletion is not available through the tracking server "
            f"{config.redact_uri(manager.tracking_uri)} (its REST API only soft-deletes); "
            "run cleanup without --permanent, then `mlflow gc --backend-store-uri <store>` "
            "on the server"
        )


def _check_no_deleted_experiments(manager: MlflowManager) -> None:
    """Refuse a purge that would take soft-deleted experiments with it.

    ``mlflow gc`` without ``--experiment-ids`` also purges every experiment in the deleted
    state, and fraudkit restores its own deleted experiments on use: purging them is not
    a cleanup of old runs.
    """
    from mlflow.entities import ViewType

    found = list(paged(manager.client.search_experiments, view_type=ViewType.DELETED_ONLY))
    if found:
        ids = ",".join(e.experiment_id for e in found)
        names = ", ".join(repr(e.name) for e in found)
        raise TrackingError(
            f"`mlflow gc` would also purge the deleted experiment(s) {names} of "
            f"{config.redact_uri(manager.tracking_uri)}; restore them (`mlflow experiments "
            f"restore --experiment-id ID`) or purge them on purpose (`mlflow gc "
            f"--experiment-ids {ids}`), then run the cleanup again; nothing was deleted"
        )


def plan_cleanup(
    experiment_type: str | ExperimentType,
    *,
    keep_last_n: int | None = None,
    older_than: str | timedelta | None = None,
    permanent: bool = False,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> CleanupPlan:
    """Decide which runs of an experiment a cleanup deletes; change nothing.

    A run is deleted when it is outside the newest ``keep_last_n`` runs and (if given)
    started more than ``older_than`` ago. A RUNNING run, or one that backs a registered
    model version, is protected instead.

    Parameters
    ----------
    experiment_type : str
    keep_last_n : int, optional
        How many of the newest runs to keep (>= 0).
    older_than : str or timedelta, optional
        Only runs older than this are deleted (``"30d"``, ``"12h"``, ``"2w"``).
    permanent : bool
        Plan to purge the runs (rows and artifacts) with ``mlflow gc``.
    manager : MlflowManager, optional
    fast : bool
        Allow the SQL fast path for reading the runs.

    Returns
    -------
    CleanupPlan

    Raises
    ------
    ConfigurationError
        Unknown experiment type, negative ``keep_last_n``, unreadable ``older_than``, or
        neither rule given.
    TrackingError
        ``permanent`` on a remote tracking server, or on a store holding deleted
        experiments that ``mlflow gc`` would purge too.
    """
    kind = ExperimentType.parse(experiment_type)
    if keep_last_n is None and older_than is None:
        raise ConfigurationError(
            "say which runs to delete: give --keep-last-n N, --older-than AGE (e.g. 30d), or both"
        )
    if keep_last_n is not None and keep_last_n < 0:
        raise ConfigurationError(f"keep_last_n must be >= 0, got {keep_last_n}")
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    if permanent:
        _check_purge_supported(manager)
    with translated(manager):
        if permanent:
            _check_no_deleted_experiments(manager)
        types_by_id = experiment_ids(manager.client, [kind])
        tables = read_tables(manager, list(types_by_id), fast=fast, only_metric=KEY_METRIC)
        backing = _protected_runs(manager.client) if types_by_id else {}
    columns = ["run_id", "run_name", "status", "start_time", "artifact_uri"]
    runs = newest_first(tables.runs)[columns]  # index 0, 1, ... = position, newest first
    candidate = pd.Series(runs.index >= (keep_last_n or 0), index=runs.index)
    if age is not None:
        cutoff_ms = (time.time() - age.total_seconds()) * 1000
        candidate &= runs["start_time"].fillna(cutoff_ms) < cutoff_ms
    reasons = [
        "running" if status == "RUNNING" else backing.get(run_id, "")
        for run_id, status in zip(runs["run_id"], runs["status"], strict=True)
    ]
    runs = runs.assign(start_time=as_time(runs["start_time"]), reason=reasons)
    protected = candidate & (runs["reason"] != "")
    runs["action"] = "keep"
    runs.loc[candidate, "action"] = "delete"
    runs.loc[protected, "action"] = "protected"
    ids = {
        action: tuple(runs.loc[runs["action"] == action, "run_id"])
        for action in ("delete", "protected", "keep")
    }
    return CleanupPlan(
        experiment_type=kind.value,
        experiment_id=next(iter(types_by_id), None),
        keep_last_n=keep_last_n,
        older_than=str(older_than) if older_than is not None else None,
        to_delete=ids["delete"],
        protected=ids["protected"],
        kept=ids["keep"],
        runs=runs,
        permanent=permanent,
    )


def execute_cleanup(
    plan: CleanupPlan,
    *,
    manager: MlflowManager | None = None,
    fast: bool = True,
    progress: Progress | None = None,
) -> CleanupResult:
    """Soft-delete the runs of ``plan.to_delete`` (and purge them when ``plan.permanent``).

    The protection rules are checked again as each run is deleted: a run that became
    RUNNING, came to back a registered model version or was deleted since the plan is
    left alone and listed in :attr:`CleanupResult.skipped`.

    A permanent cleanup soft-deletes the deleted runs' logged models too (except any
    behind a registered model version), then runs ``mlflow gc`` on exactly those runs and
    logged models, which removes their rows and artifacts. The store URI reaches
    ``mlflow gc`` through its environment, never its command line.

    Parameters
    ----------
    plan : CleanupPlan
        From :func:`plan_cleanup` on the same store.
    manager : MlflowManager, optional
    fast : bool
        Allow one UPDATE transaction on an SQL store instead of a delete_run per run.
    progress : callable, optional
        Called with the number of runs processed after each step (soft delete, then purge).

    Returns
    -------
    CleanupResult

    Raises
    ------
    TrackingError
        ``plan.permanent`` on a remote tracking server or on a store holding deleted
        experiments (nothing is deleted), or a deletion failed.
    """
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    progress = progress or (lambda done: None)
    if plan.permanent:
        _check_purge_supported(manager)
    with translated(manager):
        if plan.permanent:
            _check_no_deleted_experiments(manager)
        deleted, method = _soft_delete(manager, plan.to_delete, fast, progress)
        done = set(deleted)
        skipped = tuple(run_id for run_id in plan.to_delete if run_id not in done)
        if not (plan.permanent and deleted):
            return CleanupResult(plan, tuple(deleted), method, skipped=skipped)
        models_by_run = _delete_logged_models(manager.client, plan.experiment_id, deleted)
    failed: list[str] = []
    for run_ids, model_ids in _gc_batches(deleted, models_by_run):
        failed += _collect_garbage(manager.tracking_uri, run_ids, model_ids, progress)
    models = tuple(m for run_id in deleted for m in models_by_run.get(run_id, []))
    return CleanupResult(plan, tuple(deleted), method, tuple(failed), models, skipped)


def _soft_delete(
    manager: MlflowManager, run_ids: Sequence[str], fast: bool, progress: Progress
) -> tuple[list[str], str]:
    """Soft-delete the runs of ``run_ids`` still unprotected; return them and the method.

    One checked UPDATE on an SQL store the fast path knows (``"sql"``), else MLflow's
    delete_run per run after re-reading it (``"api"``).
    """
    with fastpath.connect(manager.tracking_uri, fast) as store:
        if store is not None and fastpath.can_soft_delete(store):
            return fastpath.soft_delete(store, run_ids, progress), "sql"
    deleted: list[str] = []
    for run_id in run_ids:
        if _still_deletable(manager.client, run_id):
            manager.client.delete_run(run_id)
            deleted.append(run_id)
        progress(1)
    return deleted, "api"


def _still_deletable(client: MlflowClient, run_id: str) -> bool:
    """Re-read ``run_id`` and its model versions: is it still active, not RUNNING, unbacked?

    MLflow's API has no conditional delete, so a window remains between this read and the
    delete_run that follows: a run restarted or a version registered in those few
    milliseconds is not seen. The plan-to-delete window (as long as the user takes to
    confirm) is closed; on an SQL store the fast path closes this one too, by checking in
    the deleting statement.
    """
    run = find_run(client, run_id)
    if run is None or run.info.lifecycle_stage != "active" or run.info.status == "RUNNING":
        return False
    versions = client.search_model_versions(f"run_id = {quote(run_id)}", max_results=1)
    return not list(versions)


def _delete_logged_models(
    client: MlflowClient, experiment_id: str | None, run_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Soft-delete the logged models of ``run_ids`` that no model version uses.

    Returns ``{run_id: [model_id, ...]}`` of the models deleted.
    """
    if experiment_id is None:
        return {}
    wanted = set(run_ids)
    # A version names its logged model by id, by a models:/<id> source, or (registered
    # from a path) by a source inside the model's artifact location.
    registered: set[str] = set()
    sources: list[str] = []
    for mv in paged(client.search_model_versions):
        source = (mv.source or "").rstrip("/")
        if mv.model_id:
            registered.add(mv.model_id)
        if source.startswith("models:/"):
            registered.add(source[len("models:/") :].split("/")[0])
        else:
            sources.append(source)
    found: dict[str, list[str]] = {}
    for model in paged(client.search_logged_models, experiment_ids=[experiment_id]):
        if model.source_run_id not in wanted or model.model_id in registered:
            continue
        location = (model.artifact_location or "").rstrip("/")
        if location and any(s == location or s.startswith(f"{location}/") for s in sources):
            continue
        client.delete_logged_model(model.model_id)
        found.setdefault(model.source_run_id, []).append(model.model_id)
    return found


def _gc_batches(
    run_ids: Sequence[str], models_by_run: dict[str, list[str]]
) -> Iterator[tuple[list[str], list[str]]]:
    """Split the work into ``mlflow gc`` calls whose id lists fit on a command line.

    Every batch names at least one run: ``mlflow gc`` without ``--run-ids`` would purge
    every deleted run of the store.
    """
    runs: list[str] = []
    models: list[str] = []
    size = 0
    for run_id in run_ids:
        mine = models_by_run.get(run_id, [])
        extra = len(run_id) + 1 + sum(len(m) + 1 for m in mine)
        if runs and size + extra > _GC_ARGUMENT_CHARS:
            yield runs, models
            runs, models, size = [], [], 0
        runs.append(run_id)
        models += mine
        size += extra
    if runs:
        yield runs, models


def _collect_garbage(
    uri: str, run_ids: list[str], model_ids: list[str], progress: Progress
) -> list[str]:
    """Run ``mlflow gc`` on soft-deleted runs and logged models of the store at ``uri``.

    Returns the ids whose artifacts gc could not delete (their rows are gone anyway).

    Raises
    ------
    TrackingError
        ``mlflow gc`` failed; what it did not purge stays soft-deleted.
    """
    command = [sys.executable, "-m", "mlflow", "gc", "--run-ids", ",".join(run_ids)]
    if model_ids:
        command += ["--logged-model-ids", ",".join(model_ids)]
    # The URI may hold a database password: pass it in the environment, which other local
    # users cannot read, not on the command line, which `ps` shows them.
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    failed: list[str] = []
    output: list[str] = []
    warned = False
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout is not None  # stdout=PIPE
        for line in process.stdout:
            output.append(line.rstrip())
            warned |= _GC_ARTIFACT_WARNING in line
            purged = _GC_PURGED.match(line.strip())
            if purged is None:
                continue
            if warned:
                failed.append(purged.group(2))
                warned = False
            if purged.group(1) == "Run":
                progress(1)
    if process.returncode != 0:
        reason = next((line for line in reversed(output) if line.strip()), "no output")
        raise TrackingError(
            f"`mlflow gc` failed ({config.redact_secrets(reason, uri)}); the runs it did not "
            "purge are soft-deleted: fix the cause, then run `mlflow gc` on the store"
        )
    return failed
