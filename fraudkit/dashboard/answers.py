"""Dashboard answers as plain records: the summary, the registry, a comparison of versions.

These are what ``fraudkit dashboard summary | registry | compare`` print, so they must come
in a fraction of a second. On an SQL store the fast path
(:mod:`~fraudkit.dashboard.fastpath`, :mod:`~fraudkit.dashboard.fastregistry`) computes
them with neither MLflow nor pandas imported; on any other store, or when the fast path
does not apply, they come from the MLflow client. Both paths feed the same code: the
summary's :func:`_experiment_runs` and :func:`_model_records`, and for the registry and
comparisons :func:`fraudkit.tracking.versions.registry_rows` and
:func:`~fraudkit.tracking.versions.comparison_rows`, whose records
:mod:`fraudkit.dashboard.records` reads by either path.

Records are JSON-ready dicts: timestamps as ISO-8601 UTC strings, NaN as None
(:func:`~fraudkit.dashboard.runs.json_value`). :mod:`~fraudkit.dashboard.queries` builds
its DataFrames from the same rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from fraudkit.core.config import DEFAULT_MODEL_NAME, ExperimentType
from fraudkit.dashboard import fastpath
from fraudkit.dashboard.fastregistry import read_registry
from fraudkit.dashboard.records import (
    REGISTRY_COLUMNS,
    DashboardSummary,
    compared_versions,
    json_records,
    registry_versions,
)
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    RUN_STATUSES,
    api_rows,
    experiment_ids,
    iso_time,
    json_value,
    store_uri,
    translated,
)
from fraudkit.tracking.store import paged
from fraudkit.tracking.versions import comparison_rows, registry_rows

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "ExperimentRuns",
    "compare_records",
    "registry_records",
    "summarise",
]


# -- the summary -----------------------------------------------------------------------


class ExperimentRuns(NamedTuple):
    """What the summary says of one experiment's active runs.

    Attributes
    ----------
    counts : dict
        ``{status: number of runs}``.
    latest : tuple or None
        The newest run: run_id, status, start_time (epoch ms).
    best : tuple or None
        The run with the highest key metric (NaN left out; ties go to the newest run):
        run_id, value.
    """

    counts: dict[str, int]
    latest: tuple[Any, ...] | None
    best: tuple[Any, ...] | None


def _experiment_runs(
    runs: list[tuple[Any, ...]], values: dict[str, float], experiment_ids: list[str]
) -> dict[str, ExperimentRuns]:
    """Summarise ``runs`` (run_id, experiment_id, status, start_time) per experiment.

    Both paths call this: the fast path with what :func:`fastpath.read_states` read, the
    public API with what search_runs returned.
    """
    # MLflow's order: start time descending, run id breaking ties, no start time last.
    ordered = sorted(runs, key=lambda r: (r[3] is None, -(r[3] or 0), r[0]))
    found = {}
    for exp_id in experiment_ids:
        mine = [run for run in ordered if run[1] == exp_id]
        latest = (mine[0][0], mine[0][2], mine[0][3]) if mine else None
        best = None
        for run in mine:  # newest first: ties on the metric go to the newest run
            value = values.get(run[0])
            if value is not None and not math.isnan(value) and (best is None or value > best[1]):
                best = (run[0], value)
        found[exp_id] = ExperimentRuns(dict(Counter(run[2] for run in mine)), latest, best)
    return found


def _experiment_records(
    types_by_id: dict[str, str],
    summaries: dict[str, ExperimentRuns],
    names: dict[str, str | None],
) -> list[dict[str, Any]]:
    id_by_type = {kind: exp_id for exp_id, kind in types_by_id.items()}
    records = []
    for kind in ExperimentType:
        exp_id = id_by_type.get(kind.value)
        runs = summaries.get(exp_id or "", ExperimentRuns({}, None, None))
        latest = runs.latest or (None,) * 3
        best = runs.best or (None,) * 2
        records.append(
            {
                "experiment_type": kind.value,
                "experiment_name": kind.experiment_name,
                "experiment_id": exp_id,
                "total": sum(runs.counts.values()),
                **{status.lower(): runs.counts.get(status, 0) for status in RUN_STATUSES},
                "latest_run_name": names.get(latest[0]) if latest[0] else None,
                "latest_run_id": latest[0],
                "latest_start": iso_time(latest[2]),
                "latest_status": latest[1],
                "best_run_name": names.get(best[0]) if best[0] else None,
                "best_run_id": best[0],
                f"best_{KEY_METRIC}": json_value(best[1]),
            }
        )
    return records


def _named(summaries: dict[str, ExperimentRuns]) -> list[str]:
    """The runs whose names the summary shows."""
    picked = [row[0] for s in summaries.values() for row in (s.latest, s.best) if row]
    return sorted(set(picked))


def _model_records(
    models: Sequence[str], versions: dict[str, list[int]], aliases: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    numbers: dict[str, list[int]] = {name: [] for name in models}
    for name, found in versions.items():
        numbers.setdefault(name, []).extend(found)
    return [
        {
            "model": name,
            "versions": len(found),
            "latest_version": max(found) if found else None,
            "aliases": ",".join(f"{a}={v}" for a, v in sorted(aliases.get(name, {}).items())),
        }
        for name, found in sorted(numbers.items())
    ]


def _api_models(client: MlflowClient) -> list[dict[str, Any]]:
    models, versions, aliases = [], {}, {}
    for model in paged(client.search_registered_models):
        models.append(model.name)
        aliases[model.name] = dict(model.aliases or {})
    for mv in paged(client.search_model_versions):
        versions.setdefault(mv.name, []).append(int(mv.version))
    return _model_records(models, versions, aliases)


def _fast_summary(store: fastpath.SqlStore) -> DashboardSummary | None:
    by_name = {kind.experiment_name: kind.value for kind in ExperimentType}
    with store.session() as query:
        found = fastpath.experiment_ids(query, list(by_name))
        types_by_id = {exp_id: by_name[name] for name, exp_id in found.items()}
        runs, values = fastpath.read_states(query, list(types_by_id), KEY_METRIC)
        summaries = _experiment_runs(runs, values, list(types_by_id))
        names = fastpath.run_names(query, _named(summaries))
        registry = read_registry(query, runs=False)
    if registry is None:
        return None
    versions: dict[str, list[int]] = {}
    for version in registry.versions:
        versions.setdefault(version.model, []).append(version.version)
    models = _model_records(registry.models, versions, registry.aliases)
    return DashboardSummary(_experiment_records(types_by_id, summaries, names), models)


def summarise(*, manager: MlflowManager | None = None, fast: bool = True) -> DashboardSummary:
    """Summarise every experiment type and the registered models.

    Parameters
    ----------
    manager : MlflowManager, optional
        The store to read (default: the one :data:`fraudkit.mlflow_manager` uses).
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
    with fastpath.connect(store_uri(manager), fast) as store:
        if store is not None:
            try:
                summary = _fast_summary(store)
            except fastpath.FastPathError:
                summary = None  # e.g. a locked SQLite file: the public API decides
            if summary is not None:
                return summary
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    with translated(manager):
        types_by_id = experiment_ids(manager.client, list(ExperimentType))
        rows = api_rows(manager.client, list(types_by_id))
        runs = [(run_id, exp, status, start) for run_id, _, exp, status, start, *_ in rows.runs]
        values = {run_id: float(v) for run_id, key, v in rows.metrics if key == KEY_METRIC}
        summaries = _experiment_runs(runs, values, list(types_by_id))
        names = {run[0]: run[1] for run in rows.runs}
        experiments = _experiment_records(types_by_id, summaries, names)
        return DashboardSummary(experiments, _api_models(manager.client))


# -- the registry and comparisons -----------------------------------------------------


def registry_records(
    *, manager: MlflowManager | None = None, fast: bool = True
) -> list[dict[str, Any]]:
    """Return every registered model version as a record (see :data:`REGISTRY_COLUMNS`).

    The records of :func:`fraudkit.dashboard.registry_overview`, sorted by model and
    version, computed without pandas or MLflow on the fast path.

    Raises
    ------
    TrackingUnavailableError
        The store cannot be reached.
    """
    rows = registry_rows(registry_versions(manager=manager, fast=fast))
    return json_records(rows, REGISTRY_COLUMNS)


def compare_records(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> list[dict[str, Any]]:
    """Return Production vs Staging (or ``versions``) side by side, as records.

    The records of :func:`fraudkit.dashboard.compare_versions` (its index as ``label``),
    computed without pandas or MLflow on the fast path: one per version (label,
    :data:`COMPARE_FIXED`, every metric of the source runs, ``param.<name>`` per param)
    and, with exactly two versions, a ``difference`` record holding second minus first
    for every metric.

    Raises
    ------
    RegistryError
        Unknown model or version, or an alias that is not set.
    """
    chosen = compared_versions(
        model_name, stages=stages, versions=versions, manager=manager, fast=fast
    )
    found = comparison_rows(chosen)
    return json_records(found.rows, found.columns)
