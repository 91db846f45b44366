"""How registered versions performed: side-by-side comparison, history and degradation.

Every function reads the registry and the runs behind it; none changes anything.
:func:`get_model_performance_history` joins each version's training evaluation with the
measurements later runs linked to it (:func:`fraudkit.tracking.registry.link_run_to_version`), and
:func:`detect_performance_degradation` compares the two.

The registry overview and the version comparison are built once, in
:mod:`fraudkit.tracking.versions`, from :class:`~fraudkit.tracking.versions.VersionRecord`
values; :func:`read_versions` and :func:`read_compared` read those records through the
MLflow client (the dashboard's SQL fast path reads the same records from the tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.core.config import stage_to_alias
from fraudkit.core.exceptions import ConfigurationError, RegistryError
from fraudkit.core.tags import EXPERIMENT_TYPE_TAG, MODEL_NAME_TAG, MODEL_VERSION_TAG
from fraudkit.tracking.registry import (
    get_version,
    list_versions,
    registered_model,
    require_alias_holder,
)
from fraudkit.tracking.store import find_run, paged, quote
from fraudkit.tracking.versions import (
    DEFAULT_STAGES,
    KEY_METRICS,
    SourceRun,
    VersionRecord,
    comparison_frame,
    registry_frame,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "HISTORY_COLUMNS",
    "KEY_METRICS",
    "TRAINING_SOURCE",
    "DegradationResult",
    "compare_model_versions",
    "detect_performance_degradation",
    "get_model_performance_history",
    "get_registry_overview",
    "read_compared",
    "read_versions",
]

TRAINING_SOURCE = "training"
HISTORY_COLUMNS = ["version", "run_id", "source", "metric", "step", "timestamp", "value"]


@dataclass(frozen=True)
class DegradationResult:
    """Outcome of :func:`detect_performance_degradation`.

    ``drop`` is positive when the version got worse (whatever the metric's direction);
    ``relative_drop`` is ``drop / |baseline|``. Without monitoring measurements ``recent``,
    ``drop`` and ``relative_drop`` are NaN and ``degraded`` is False.
    """

    model_name: str
    version: str
    metric: str
    degraded: bool
    baseline: float
    recent: float
    drop: float
    relative_drop: float
    tolerance: float
    window: int
    n_measurements: int
    higher_is_better: bool
    baseline_run_id: str
    runs: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a flat dict (``runs`` comma-joined)."""
        out = asdict(self)
        out["runs"] = ",".join(self.runs)
        return out


def _record(client: MlflowClient, mv: ModelVersion, aliases: Iterable[str]) -> VersionRecord:
    """``mv`` as a :class:`~fraudkit.tracking.versions.VersionRecord`, source run read."""
    run = find_run(client, mv.run_id)
    source = SourceRun(dict(run.data.metrics), dict(run.data.params)) if run else None
    return VersionRecord(
        model=mv.name,
        version=int(mv.version),
        created=mv.creation_timestamp,
        status=mv.status,
        run_id=mv.run_id,
        aliases=tuple(sorted(aliases)),
        tags=dict(mv.tags or {}),
        run=source,
    )


def read_versions(client: MlflowClient) -> list[VersionRecord]:
    """Return every version of every registered model, with its aliases and source run.

    The MLflow client's reader of :func:`~fraudkit.tracking.versions.registry_rows`; the
    dashboard's SQL fast path reads the same records from MLflow's tables.
    """
    records = []
    for model in paged(client.search_registered_models):
        # search_model_versions leaves ModelVersion.aliases empty; the model knows them.
        aliases: dict[str, list[str]] = {}
        for alias, holder in (model.aliases or {}).items():
            aliases.setdefault(str(holder), []).append(alias)
        for mv in list_versions(client, model.name):
            records.append(_record(client, mv, aliases.get(str(mv.version), [])))
    return records


def read_compared(
    client: MlflowClient,
    model_name: str,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
) -> list[tuple[str, VersionRecord]]:
    """Return the versions to compare, labelled, with their source runs.

    The MLflow client's reader of :func:`~fraudkit.tracking.versions.comparison_rows`;
    parameters as for :func:`compare_model_versions`. Labels are the alias
    (``production``) or ``v<N>`` for explicit ``versions``.

    Raises
    ------
    RegistryError
        Unknown model or version, an empty ``versions``, or a stage whose alias is not set.
    """
    if versions is not None:
        if not versions:
            raise RegistryError("versions= is empty; name at least one version to compare")
        found = [get_version(client, model_name, v) for v in versions]
        chosen = [(f"v{mv.version}", mv) for mv in found]
    else:
        chosen = [
            (stage_to_alias(stage), require_alias_holder(client, model_name, stage))
            for stage in stages or DEFAULT_STAGES
        ]
    # get_model_version fills in the aliases a version holds (a search would not).
    return [(label, _record(client, mv, mv.aliases)) for label, mv in chosen]


def compare_model_versions(
    client: MlflowClient,
    model_name: str,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
) -> pd.DataFrame:
    """Compare versions side by side: one row per version plus a ``difference`` row.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    stages : sequence of str, optional
        Stage or alias names (default ``["Production", "Staging"]``); ignored when
        ``versions`` is given.
    versions : sequence, optional
        Explicit version numbers.

    Returns
    -------
    DataFrame
        Index ``label`` (the alias, or ``v<N>`` for explicit versions); columns alias (all
        aliases the version holds, comma-joined), version, run_id, created, model_type,
        one column per metric logged on the version's source run and ``param.<name>`` per
        param. With exactly two versions a final row ``difference`` holds second minus
        first for every metric (with the default stages: staging minus production).
        Built by :func:`~fraudkit.tracking.versions.comparison_rows`.

    Raises
    ------
    RegistryError
        Unknown model or version, an empty ``versions``, or a stage whose alias is not set.
    """
    return comparison_frame(read_compared(client, model_name, stages, versions))


def _linked_runs(client: MlflowClient, model_name: str) -> Iterator[Run]:
    experiment_ids = [e.experiment_id for e in paged(client.search_experiments)]
    if experiment_ids:
        yield from paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=f"tags.`{MODEL_NAME_TAG}` = {quote(model_name)}",
        )


def get_model_performance_history(
    client: MlflowClient, model_name: str, metrics: Iterable[str] | None = None
) -> pd.DataFrame:
    """Return the tidy performance history of every version of ``model_name``.

    One row per (version, run, metric, step, timestamp, value): the evaluation logged on
    each version's source run (``source="training"``) and every measurement a later run
    linked with :func:`link_run_to_version` logged (``source`` = that run's experiment
    type, e.g. ``"monitoring"``). AUPRC over time per version is then::

        h = history[history.metric == "average_precision"]
        sns.lineplot(h, x="timestamp", y="value", hue="version")

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    metrics : iterable of str, optional
        Only these metrics (default all).

    Returns
    -------
    DataFrame
        Columns version (int), run_id, source, metric, step, timestamp (UTC), value,
        sorted by version, metric, timestamp and step.

    Raises
    ------
    RegistryError
        Unknown model.
    """
    registered_model(client, model_name)
    wanted = set(metrics) if metrics is not None else None
    sources: dict[tuple[str, str], tuple[str, Iterable[str]]] = {}  # (version, run) -> ...
    for mv in list_versions(client, model_name):
        run = find_run(client, mv.run_id)
        if run is not None:
            sources[(str(mv.version), run.info.run_id)] = (TRAINING_SOURCE, run.data.metrics)
    known = {version for version, _ in sources}
    for run in _linked_runs(client, model_name):
        key = (run.data.tags.get(MODEL_VERSION_TAG, ""), run.info.run_id)
        if key[0] in known and key not in sources:
            sources[key] = (run.data.tags.get(EXPERIMENT_TYPE_TAG, "unknown"), run.data.metrics)
    rows = [
        (int(version), run_id, source, name, m.step, m.timestamp, m.value)
        for (version, run_id), (source, names) in sources.items()
        for name in sorted(names)
        if wanted is None or name in wanted
        for m in client.get_metric_history(run_id, name)
    ]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame.sort_values(["version", "metric", "timestamp", "step"], ignore_index=True)


def detect_performance_degradation(
    client: MlflowClient,
    model_name: str,
    metric: str = "average_precision",
    *,
    window: int = 3,
    tolerance: float = 0.1,
    stage: str = "Production",
    version: str | int | None = None,
    higher_is_better: bool = True,
) -> DegradationResult:
    """Compare a version's recent measurements with its training evaluation.

    The baseline is the last value of ``metric`` on the version's source run; ``recent``
    is the mean of the ``window`` most recent measurements linked to the version (see
    :func:`link_run_to_version`). ``degraded`` is True when the relative drop exceeds
    ``tolerance``.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    metric : str
        The metric to watch.
    window : int
        How many of the most recent measurements to average.
    tolerance : float
        Allowed relative drop (0.1 = 10 % worse than the baseline).
    stage : str
        Whose version to check when ``version`` is not given (default the production one).
    version : str or int, optional
        Check this version instead.
    higher_is_better : bool
        False for metrics such as expected cost, where a rise is a degradation.

    Returns
    -------
    DegradationResult

    Raises
    ------
    ConfigurationError
        ``window`` < 1 or negative ``tolerance``.
    RegistryError
        Unknown model or version, no version holds the stage's alias, or the baseline
        metric is missing.
    """
    if window < 1 or tolerance < 0:
        raise ConfigurationError(
            f"window={window}, tolerance={tolerance}: window must be >= 1 and tolerance >= 0"
        )
    if version is None:
        mv = require_alias_holder(client, model_name, stage)
    else:
        mv = get_version(client, model_name, version)
    history = get_model_performance_history(client, model_name, metrics=[metric])
    mine = history[history["version"] == int(mv.version)]
    training = mine[mine["source"] == TRAINING_SOURCE]
    if training.empty:
        raise RegistryError(
            f"version {mv.version} of {model_name!r} has no {metric!r} logged on its training "
            "run; choose a metric= it logged"
        )
    baseline = float(training["value"].iloc[-1])
    measured = mine[mine["source"] != TRAINING_SOURCE].tail(window)
    recent = drop = relative = math.nan
    if not measured.empty:
        recent = float(measured["value"].mean())
        drop = baseline - recent if higher_is_better else recent - baseline
        # A zero baseline has no scale: any worsening counts as infinitely large.
        if baseline:
            relative = drop / abs(baseline)
        else:
            relative = math.copysign(math.inf, drop) if drop else 0.0
    return DegradationResult(
        model_name=model_name,
        version=str(mv.version),
        metric=metric,
        degraded=bool(relative > tolerance),
        baseline=baseline,
        recent=recent,
        drop=drop,
        relative_drop=relative,
        tolerance=tolerance,
        window=window,
        n_measurements=len(measured),
        higher_is_better=higher_is_better,
        baseline_run_id=str(training["run_id"].iloc[-1]),
        runs=tuple(dict.fromkeys(measured["run_id"])),
    )


def get_registry_overview(client: MlflowClient) -> pd.DataFrame:
    """Return one row per registered model version with its aliases and key metrics.

    Returns
    -------
    DataFrame
        Columns model, version (int), aliases (comma-joined), created (UTC), status,
        run_id, model_type and the key metrics (average_precision, roc_auc,
        fraud_precision, fraud_recall, fraud_f1) as logged on the version's source run;
        sorted by model and version. A model without versions is left out. Built by
        :func:`~fraudkit.tracking.versions.registry_rows`.
    """
    return registry_frame(read_versions(client))
