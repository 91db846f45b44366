"""Dashboard answers as plain records: the summary, the registry, a comparison of versions.

These are what ``fraudkit dashboard summary | registry | compare`` print, so they must come
in a fraction of a second. On an SQL store the fast path
(:mod:`~fraudkit.dashboard.fastpath`, :mod:`~fraudkit.dashboard.fastregistry`) computes
them with neither MLflow nor pandas imported; on any other store, or when the fast path
does not apply, they come from the public API (:mod:`fraudkit.dashboard.queries`). Both
paths give equal records (the tests compare them).

Records are JSON-ready dicts: timestamps as ISO-8601 UTC strings, NaN as None
(:func:`~fraudkit.dashboard.runs.json_value`). :mod:`~fraudkit.dashboard.queries` builds
its DataFrames from the same fast-path reads.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from fraudkit.core.config import DEFAULT_MODEL_NAME, ExperimentType, stage_to_alias
from fraudkit.core.exceptions import ConfigurationError
from fraudkit.core.tags import MODEL_CLASS_TAG, MODEL_TYPE_TAG
from fraudkit.dashboard import fastpath
from fraudkit.dashboard.fastregistry import Registry, VersionRow, read_registry, read_runs
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    RUN_STATUSES,
    api_rows,
    experiment_ids,
    iso_time,
    json_value,
    resolve_manager,
    store_uri,
    to_records,
    translated,
)
from fraudkit.tracking.store import paged

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "COMPARE_FIXED",
    "EXPERIMENT_COLUMNS",
    "MODEL_COLUMNS",
    "REGISTRY_COLUMNS",
    "REGISTRY_METRICS",
    "DashboardSummary",
    "ExperimentRuns",
    "compare_records",
    "comparison_records",
    "fast_comparison",
    "fast_registry",
    "model_type",
    "registry_records",
    "summarise",
]

# The key metrics of the registry overview; equal to fraudkit.tracking.history.KEY_METRICS, which
# this module cannot import (fraudkit.tracking.history loads MLflow).
REGISTRY_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "fraud_f1")
REGISTRY_COLUMNS = [
    "model",
    "version",
    "aliases",
    "created",
    "status",
    "run_id",
    "model_type",
    *REGISTRY_METRICS,
]
COMPARE_FIXED = ["alias", "version", "run_id", "created", "model_type"]
EXPERIMENT_COLUMNS = [
    "experiment_type",
    "experiment_name",
    "experiment_id",
    "total",
    *(status.lower() for status in RUN_STATUSES),
    "latest_run_name",
    "latest_run_id",
    "latest_start",
    "latest_status",
    "best_run_name",
    "best_run_id",
    f"best_{KEY_METRIC}",
]
MODEL_COLUMNS = ["model", "versions", "latest_version", "aliases"]


@dataclass(frozen=True, eq=False)
class DashboardSummary:
    """Runs per experiment type and registered models.

    Attributes
    ----------
    experiment_records : list of dict
        One JSON-ready record per experiment type, keys :data:`EXPERIMENT_COLUMNS`:
        experiment_type, experiment_name, experiment_id, total, one count per run status
        (lower case), latest_run_name, latest_run_id, latest_start (ISO-8601 UTC),
        latest_status, best_run_name, best_run_id and ``best_average_precision`` (the
        highest value of the key metric).
    model_records : list of dict
        One record per registered model: model, versions, latest_version, aliases
        (``"production=3,staging=5"``).
    """

    experiment_records: list[dict[str, Any]]
    model_records: list[dict[str, Any]]

    @functools.cached_property
    def experiments(self) -> pd.DataFrame:
        """:attr:`experiment_records` as a DataFrame (``latest_start`` as UTC timestamps)."""
        import pandas as pd

        frame = pd.DataFrame(self.experiment_records, columns=EXPERIMENT_COLUMNS)
        frame["latest_start"] = pd.to_datetime(frame["latest_start"], utc=True)
        return frame

    @functools.cached_property
    def models(self) -> pd.DataFrame:
        """:attr:`model_records` as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.model_records, columns=MODEL_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Return both tables as JSON-ready lists of records."""
        return {"experiments": self.experiment_records, "models": self.model_records}


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


# -- the registry ----------------------------------------------------------------------


def model_type(tags: dict[str, str], params: dict[str, str]) -> str | None:
    """Return a version's model type: its tag, its run's ``model_type`` param, its class tag."""
    return tags.get(MODEL_TYPE_TAG) or params.get("model_type") or tags.get(MODEL_CLASS_TAG)


def fast_registry(manager: MlflowManager | None = None, fast: bool = True) -> Registry | None:
    """Read the whole registry, with the versions' source runs, by the fast path.

    Returns
    -------
    Registry or None
        None when the fast path does not apply (use the public API).
    """
    with fastpath.connect(store_uri(manager), fast) as store:
        if store is None:
            return None
        try:
            with store.session() as query:
                return read_registry(query)
        except fastpath.FastPathError:
            return None


def _registry_record(version: VersionRow) -> dict[str, Any]:
    metrics = version.run.metrics if version.run else {}
    params = version.run.params if version.run else {}
    return {
        "model": version.model,
        "version": version.version,
        "aliases": ",".join(version.aliases),
        "created": iso_time(version.created),
        "status": version.status,
        "run_id": version.run_id,
        "model_type": model_type(version.tags, params),
        **{name: json_value(metrics.get(name)) for name in REGISTRY_METRICS},
    }


def registry_records(
    *, manager: MlflowManager | None = None, fast: bool = True
) -> list[dict[str, Any]]:
    """Return every registered model version as a record (see :data:`REGISTRY_COLUMNS`).

    The records of :func:`fraudkit.dashboard.registry_overview`, sorted by model and
    version, computed without pandas on the fast path.
    """
    registry = fast_registry(manager, fast)
    if registry is not None:
        return [_registry_record(version) for version in registry.versions]
    from fraudkit.dashboard.queries import registry_overview

    return to_records(registry_overview(manager=manager, fast=False))


# -- comparison ------------------------------------------------------------------------


def _chosen(
    registry: Registry,
    model_name: str,
    stages: Sequence[str] | None,
    versions: Sequence[str | int] | None,
) -> list[tuple[str, VersionRow]] | None:
    by_number = {version.version: version for version in registry.versions}
    chosen = []
    if versions is not None:
        for wanted in versions:
            number = str(wanted).strip()
            if not (number.isascii() and number.isdigit()) or int(number) not in by_number:
                return None
            found = by_number[int(number)]
            chosen.append((f"v{found.version}", found))
        return chosen
    for stage in stages or ["Production", "Staging"]:
        try:
            alias = stage_to_alias(stage)
        except ConfigurationError:
            return None
        holder = registry.aliases.get(model_name, {}).get(alias)
        if holder is None or holder not in by_number:
            return None
        chosen.append((alias, by_number[holder]))
    return chosen


def fast_comparison(
    model_name: str,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> list[tuple[str, VersionRow]] | None:
    """Return the versions to compare, labelled, with their source runs, by the fast path.

    Labels are the alias (``production``) or ``v<N>`` for explicit ``versions``.

    Returns
    -------
    list of (str, VersionRow) or None
        None when the fast path does not apply, or when the model, a version or an alias
        is missing: the public API then raises the error that says so.
    """
    if versions is not None and not versions:
        return None
    with fastpath.connect(store_uri(manager), fast) as store:
        if store is None:
            return None
        try:
            with store.session() as query:
                registry = read_registry(query, model_name, runs=False)
                if registry is None or model_name not in registry.models:
                    return None
                chosen = _chosen(registry, model_name, stages, versions)
                if chosen is None:
                    return None
                runs = read_runs(query, [v.run_id for _, v in chosen if v.run_id])
        except fastpath.FastPathError:
            return None
    return [
        (label, v._replace(run=runs.get(v.run_id) if v.run_id else None)) for label, v in chosen
    ]


def comparison_records(chosen: Sequence[tuple[str, VersionRow]]) -> list[dict[str, Any]]:
    """Return the records of :func:`fraudkit.dashboard.compare_versions` for ``chosen``.

    One record per version (label, :data:`COMPARE_FIXED`, every metric of the source runs,
    ``param.<name>`` per param) and, with exactly two versions, a ``difference`` record
    holding second minus first for every metric.
    """
    metric_names = sorted({m for _, v in chosen if v.run for m in v.run.metrics})
    param_names = sorted({p for _, v in chosen if v.run for p in v.run.params})
    records = []
    for label, version in chosen:
        metrics = version.run.metrics if version.run else {}
        params = version.run.params if version.run else {}
        records.append(
            {
                "label": label,
                "alias": ",".join(version.aliases),
                "version": version.version,
                "run_id": version.run_id,
                "created": iso_time(version.created),
                "model_type": model_type(version.tags, params),
                **{name: json_value(metrics.get(name)) for name in metric_names},
                **{f"param.{name}": params.get(name) for name in param_names},
            }
        )
    if len(records) == 2:
        first, second = records

        def number(value: Any) -> float:
            return math.nan if value is None else float(value)

        records.append(
            {
                "label": "difference",
                **dict.fromkeys(COMPARE_FIXED),
                **{m: json_value(number(second[m]) - number(first[m])) for m in metric_names},
                **{f"param.{name}": None for name in param_names},
            }
        )
    return records


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
    computed without pandas on the fast path.

    Raises
    ------
    RegistryError
        Unknown model or version, or an alias that is not set.
    """
    chosen = fast_comparison(
        model_name, stages=stages, versions=versions, manager=manager, fast=fast
    )
    if chosen is not None:
        return comparison_records(chosen)
    from fraudkit.dashboard.queries import compare_versions

    frame = compare_versions(
        model_name, stages=stages, versions=versions, manager=manager, fast=False
    )
    return to_records(frame.reset_index())
