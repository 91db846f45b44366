"""Dashboard queries: summary, registry overview, version comparison, runs, model history.

Every function returns plain data (DataFrames or frozen dataclasses with ``to_dict()``);
``fraudkit dashboard ...`` presents them. Functions take ``manager=`` (default: the
module-level :data:`fraudkit.mlflow_manager`, i.e. the store ``MLFLOW_TRACKING_URI`` names)
and, where they read many runs, ``fast=`` to allow the SQL fast path
(:mod:`fraudkit.dashboard.fastpath`); both paths give identical answers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.config import DEFAULT_MODEL_NAME, ExperimentType
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    RUN_STATUSES,
    RunTables,
    as_time,
    experiment_ids,
    newest_first,
    read_tables,
    resolve_manager,
    to_records,
    translated,
)
from fraudkit.exceptions import RegistryError, TrackingUnavailableError
from fraudkit.history import (
    compare_model_versions,
    get_model_performance_history,
    get_registry_overview,
)
from fraudkit.store import paged, store_error

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudkit.tracking import MlflowManager

__all__ = [
    "DashboardSummary",
    "compare_versions",
    "model_history",
    "registry_overview",
    "runs_frame",
    "save_history_plot",
    "summarise",
]


@dataclass(frozen=True, eq=False)
class DashboardSummary:
    """Runs per experiment type and registered models.

    Attributes
    ----------
    experiments : DataFrame
        One row per experiment type: experiment_type, experiment_name, experiment_id,
        total, one count column per run status (lower case), latest_run_name,
        latest_run_id, latest_start, latest_status, best_run_name, best_run_id and
        ``best_average_precision`` (the highest value of the key metric).
    models : DataFrame
        One row per registered model: model, versions, latest_version, aliases
        (``"production=3,staging=5"``).
    """

    experiments: pd.DataFrame
    models: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """Return both tables as JSON-ready lists of records."""
        return {"experiments": to_records(self.experiments), "models": to_records(self.models)}


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


def _experiment_rows(tables: RunTables, types_by_id: dict[str, str]) -> pd.DataFrame:
    """The per-type summary table from the runs and their key metric."""
    runs = newest_first(tables.runs)
    key = tables.metrics[tables.metrics["key"] == KEY_METRIC].set_index("run_id")["value"]
    runs["metric"] = runs["run_id"].map(key).astype(float)
    id_by_type = {kind: exp_id for exp_id, kind in types_by_id.items()}
    rows = []
    for kind in ExperimentType:
        mine = runs[runs["experiment_id"] == id_by_type.get(kind.value)]
        counts = mine["status"].value_counts()
        row: dict[str, Any] = {
            "experiment_type": kind.value,
            "experiment_name": kind.experiment_name,
            "experiment_id": id_by_type.get(kind.value),
            "total": len(mine),
            **{status.lower(): int(counts.get(status, 0)) for status in RUN_STATUSES},
        }
        latest = mine.head(1)
        scored = mine.dropna(subset=["metric"])
        # Ties on the metric go to the newest run (mine is newest first; the sort is stable).
        best = scored.sort_values("metric", ascending=False, kind="stable").head(1)
        row.update(
            latest_run_name=_first(latest, "run_name"),
            latest_run_id=_first(latest, "run_id"),
            latest_start=as_time(latest["start_time"]).iloc[0] if len(latest) else pd.NaT,
            latest_status=_first(latest, "status"),
            best_run_name=_first(best, "run_name"),
            best_run_id=_first(best, "run_id"),
            **{f"best_{KEY_METRIC}": float(best["metric"].iloc[0]) if len(best) else None},
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _first(frame: pd.DataFrame, column: str) -> Any:
    return frame[column].iloc[0] if len(frame) else None


def _model_rows(client: MlflowClient) -> pd.DataFrame:
    versions: dict[str, list[int]] = {}
    aliases: dict[str, list[str]] = {}
    for model in paged(client.search_registered_models):
        versions[model.name] = []
        aliases[model.name] = [f"{a}={v}" for a, v in sorted(model.aliases.items())]
    for mv in paged(client.search_model_versions):
        versions.setdefault(mv.name, []).append(int(mv.version))
    rows = [
        {
            "model": name,
            "versions": len(numbers),
            "latest_version": max(numbers) if numbers else None,
            "aliases": ",".join(aliases.get(name, [])),
        }
        for name, numbers in sorted(versions.items())
    ]
    return pd.DataFrame(rows, columns=["model", "versions", "latest_version", "aliases"])


# -- public API ------------------------------------------------------------------------


def summarise(*, manager: MlflowManager | None = None, fast: bool = True) -> DashboardSummary:
    """Summarise every experiment type and the registered models.

    Parameters
    ----------
    manager : MlflowManager, optional
        The store to read (default: :data:`fraudkit.mlflow_manager`).
    fast : bool
        Allow the SQL fast path; False forces the public API.

    Returns
    -------
    DashboardSummary

    Raises
    ------
    TrackingUnavailableError
        The store cannot be reached.
    """
    manager = resolve_manager(manager)
    with translated(manager):
        types_by_id = experiment_ids(manager.client, list(ExperimentType))
        tables = read_tables(manager, list(types_by_id), fast=fast, only_metric=KEY_METRIC)
        return DashboardSummary(_experiment_rows(tables, types_by_id), _model_rows(manager.client))


def registry_overview(*, manager: MlflowManager | None = None) -> pd.DataFrame:
    """Return every registered model version with aliases, creation time, run and metrics.

    See :func:`fraudkit.history.get_registry_overview` for the columns.
    """
    manager = resolve_manager(manager)
    with translated(manager):
        return get_registry_overview(manager.client)


def compare_versions(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
) -> pd.DataFrame:
    """Return Production vs Staging (or explicit ``versions``) side by side with a difference.

    See :func:`fraudkit.history.compare_model_versions`.

    Raises
    ------
    RegistryError
        Unknown model or version, or an alias that is not set.
    """
    manager = resolve_manager(manager)
    with translated(manager):
        return compare_model_versions(manager.client, model_name, stages=stages, versions=versions)


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
        As :func:`fraudkit.history.get_model_performance_history`: version, run_id,
        source, metric, step, timestamp, value.

    Raises
    ------
    RegistryError
        No registered model of that name.
    """
    manager = resolve_manager(manager)
    with translated(manager):
        _require_model(manager, model_name)
        metrics = [metric] if metric else None
        return get_model_performance_history(manager.client, model_name, metrics)


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

    from fraudkit.plots import plot_metric_history

    target = Path(path).expanduser().resolve()
    figure = plot_metric_history(history, metric=metric, x="timestamp", by="version")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return target
