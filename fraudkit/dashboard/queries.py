"""Dashboard queries as DataFrames: registry overview, version comparison, runs, model history.

Every function returns plain data (DataFrames); ``fraudkit dashboard ...`` presents them.
Functions take ``manager=`` (default: the module-level :data:`fraudkit.mlflow_manager`,
i.e. the store ``MLFLOW_TRACKING_URI`` names) and ``fast=`` to allow the SQL fast path
(:mod:`fraudkit.dashboard.fastpath`); both paths give identical answers. The registry
overview and the comparison are built from the version records of
:mod:`fraudkit.dashboard.records` by the one function each of
:mod:`fraudkit.tracking.versions`. The summary, and the records the CLI prints, live in
:mod:`fraudkit.dashboard.answers`, which needs no pandas.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fraudkit.core.config import DEFAULT_MODEL_NAME, ExperimentType
from fraudkit.core.exceptions import DataValidationError, RegistryError, TrackingUnavailableError
from fraudkit.dashboard.records import compared_versions, registry_versions
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    RunTables,
    as_time,
    experiment_ids,
    newest_first,
    read_tables,
    translated,
)
from fraudkit.tracking.store import store_error
from fraudkit.tracking.versions import comparison_frame, registry_frame

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "compare_versions",
    "history_table",
    "model_history",
    "registry_overview",
    "runs_frame",
    "save_history_plot",
]

# -- frames ----------------------------------------------------------------------------


def _wide(tables: RunTables, types_by_id: dict[str, str]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*``, ``tags.*`` (sorted)."""
    runs = newest_first(tables.runs)
    frame = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs["run_name"],
            "experiment_type": runs["experiment_id"].map(types_by_id),
            "experiment_id": runs["experiment_id"],
            "status": runs["status"],
            "start_time": as_time(runs["start_time"]),
            "end_time": as_time(runs["end_time"]),
            "artifact_uri": runs["artifact_uri"],
        }
    )
    groups = {"metrics.": tables.metrics, "params.": tables.params, "tags.": tables.tags}
    for prefix, long in groups.items():
        if long.empty:
            continue
        wide = long.pivot(index="run_id", columns="key", values="value")
        wide = wide[sorted(wide.columns)].add_prefix(prefix)
        wide.columns.name = None
        frame = frame.join(wide, on="run_id")
    return frame


# -- public API ------------------------------------------------------------------------


def registry_overview(*, manager: MlflowManager | None = None, fast: bool = True) -> pd.DataFrame:
    """Return every registered model version with aliases, creation time, run and metrics.

    See :func:`fraudkit.tracking.history.get_registry_overview` for the columns; ``fast`` allows
    the SQL fast path.
    """
    return registry_frame(registry_versions(manager=manager, fast=fast))


def compare_versions(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> pd.DataFrame:
    """Return Production vs Staging (or explicit ``versions``) side by side with a difference.

    See :func:`fraudkit.tracking.history.compare_model_versions`; ``fast`` allows the SQL fast path.

    Raises
    ------
    RegistryError
        Unknown model or version, or an alias that is not set.
    """
    chosen = compared_versions(
        model_name, stages=stages, versions=versions, manager=manager, fast=fast
    )
    return comparison_frame(chosen)


def runs_frame(
    experiment_type: str | ExperimentType | None = None,
    *,
    filter_string: str | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> pd.DataFrame:
    """Return the active runs of one experiment type (or all five), one row per run.

    Parameters
    ----------
    experiment_type : str, optional
        ``training``, ``ab_testing``, ... None: all five experiments.
    filter_string : str, optional
        An MLflow search filter (``"metrics.average_precision > 0.8"``); with a filter the
        public API is used.
    manager : MlflowManager, optional
    fast : bool
        Allow the SQL fast path.

    Returns
    -------
    DataFrame
        Columns run_id, run_name, experiment_type, experiment_id, status, start_time,
        end_time (UTC), artifact_uri, then ``metrics.<key>`` (float), ``params.<key>`` and
        ``tags.<key>`` (strings), each group sorted by key. Rows newest first.

    Raises
    ------
    ConfigurationError
        Unknown experiment type.
    TrackingError
        Invalid filter string.
    """
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    types = (
        list(ExperimentType) if experiment_type is None else [ExperimentType.parse(experiment_type)]
    )
    with translated(manager):
        types_by_id = experiment_ids(manager.client, types)
        tables = read_tables(manager, list(types_by_id), fast=fast, filter_string=filter_string)
    return _wide(tables, types_by_id)


def model_history(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    metric: str | None = None,
    manager: MlflowManager | None = None,
) -> pd.DataFrame:
    """Return the performance history of every version of ``model_name``.

    Parameters
    ----------
    model_name : str
    metric : str, optional
        Keep only this metric.
    manager : MlflowManager, optional

    Returns
    -------
    DataFrame
        As :func:`fraudkit.tracking.history.get_model_performance_history`: version, run_id,
        source, metric, step, timestamp, value.

    Raises
    ------
    RegistryError
        No registered model of that name.
    """
    from fraudkit.tracking.history import get_model_performance_history
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    with translated(manager):
        _require_model(manager, model_name)
        metrics = [metric] if metric else None
        return get_model_performance_history(manager.client, model_name, metrics)


def history_table(history: pd.DataFrame, metric: str = KEY_METRIC) -> pd.DataFrame:
    """Return one metric of a model's history as a version x source/window table.

    One row per version and run that measured it: the version's training evaluation, then
    the runs linked to it later (monitoring, retraining), in the order they logged. One
    column per window: ``w<i>`` holds the value logged at step ``i`` (a monitoring run's
    window ``i``; a training evaluation logs at step 0). A value logged twice at one step
    counts once, the later one.

    Parameters
    ----------
    history : DataFrame
        From :func:`model_history`.
    metric : str

    Returns
    -------
    DataFrame
        Columns version, source, run_id, logged (UTC time of the run's first value of
        ``metric``), then ``w0``, ``w1``, ...; sorted by version, then logged.

    Raises
    ------
    DataValidationError
        ``history`` has values, but none of ``metric``; the message lists the metrics.
    """
    keys = ["version", "run_id"]
    mine = history[history["metric"] == metric]
    if mine.empty and not history.empty:
        known = ", ".join(sorted(history["metric"].unique()))
        raise DataValidationError(
            f"no {metric!r} recorded for these versions; choose one of: {known}"
        )
    ordered = mine.sort_values(["timestamp", "step"], kind="stable")
    latest = ordered.drop_duplicates([*keys, "step"], keep="last")
    windows = latest.pivot(index=keys, columns="step", values="value")
    windows.columns = [f"w{int(step)}" for step in windows.columns]
    runs = ordered.groupby(keys, sort=False).agg(
        source=("source", "first"), logged=("timestamp", "min")
    )
    table = runs.join(windows).reset_index()
    table = table.sort_values(["version", "logged", "run_id"], ignore_index=True)
    return table[["version", "source", "run_id", "logged", *windows.columns]]


def _require_model(manager: MlflowManager, model_name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        manager.client.get_registered_model(model_name)
    except MlflowException as exc:
        error = store_error(exc, manager.tracking_uri)
        if isinstance(error, TrackingUnavailableError):
            raise error from exc
        raise RegistryError(
            f"registered model {model_name!r} not found; `fraudkit dashboard registry` lists "
            "the registered models"
        ) from exc


def save_history_plot(
    history: pd.DataFrame, path: str | os.PathLike, *, metric: str = KEY_METRIC
) -> Path:
    """Draw ``metric`` over time, one line per version, to an image file; return its path.

    Parameters
    ----------
    history : DataFrame
        From :func:`model_history`.
    path : path
        The image file (PNG by suffix); missing parent directories are created.
    metric : str

    Returns
    -------
    Path
        The absolute path written.

    Raises
    ------
    DataValidationError
        ``metric`` is absent from ``history``.
    """
    import matplotlib.pyplot as plt

    from fraudkit.display.plots import plot_metric_history

    target = Path(path).expanduser().resolve()
    figure = plot_metric_history(history, metric=metric, x="timestamp", by="version")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return target
