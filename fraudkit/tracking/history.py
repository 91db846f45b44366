"""How registered versions performed: side-by-side comparison, history and degradation.

Every function reads the registry and the runs behind it; none changes anything.
:func:`get_model_performance_history` joins each version's training evaluation with the
measurements later runs linked to it (:func:`fraudkit.tracking.registry.link_run_to_version`), and
:func:`detect_performance_degradation` compares the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.core.config import stage_to_alias
from fraudkit.core.exceptions import ConfigurationError, RegistryError
from fraudkit.core.tags import (
    EXPERIMENT_TYPE_TAG,
    MODEL_CLASS_TAG,
    MODEL_NAME_TAG,
    MODEL_TYPE_TAG,
    MODEL_VERSION_TAG,
)
from fraudkit.tracking.registry import (
    get_version,
    list_versions,
    registered_model,
    require_alias_holder,
)
from fraudkit.tracking.store import find_run, paged, quote

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
    "comparison_frame",
    "detect_performance_degradation",
    "get_model_performance_history",
    "get_registry_overview",
]

KEY_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "fraud_f1")
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


def _model_type(mv: ModelVersion, params: dict[str, str]) -> str | None:
    tags = mv.tags or {}
    return tags.get(MODEL_TYPE_TAG) or params.get("model_type") or tags.get(MODEL_CLASS_TAG)


def _created(mv: ModelVersion) -> pd.Timestamp:
    return pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC")


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
            for stage in stages or ["Production", "Staging"]
        ]
    rows, metric_names, param_names = [], set(), set()
    for label, mv in chosen:
        run = find_run(client, mv.run_id)
        metrics = dict(run.data.metrics) if run else {}
        params = {f"param.{k}": v for k, v in (run.data.params if run else {}).items()}
        metric_names |= set(metrics)
        param_names |= set(params)
        rows.append(
            {
                "label": label,
                "alias": ",".join(sorted(mv.aliases)),
                "version": int(mv.version),
                "run_id": mv.run_id,
                "created": _created(mv),
                "model_type": _model_type(mv, run.data.params if run else {}),
                **metrics,
                **params,
            }
        )
    return comparison_frame(rows, metric_names, param_names)


def comparison_frame(
    rows: Sequence[dict[str, Any]], metric_names: Iterable[str], param_names: Iterable[str]
) -> pd.DataFrame:
    """Build the frame of :func:`compare_model_versions` from one dict per version.

    Each row holds ``label``, ``alias``, ``version``, ``run_id``, ``created``,
    ``model_type``, its metrics and its ``param.*`` values; with exactly two rows a final
    row ``difference`` holds second minus first for every metric. The dashboard's SQL fast
    path builds the same frame from its own rows.
    """
    metrics, params = sorted(metric_names), sorted(param_names)
    fixed = ["alias", "version", "run_id", "created", "model_type"]
    frame = pd.DataFrame(list(rows)).set_index("label")
    frame = frame[fixed + metrics + params]
    if len(frame) == 2:
        numbers = frame[metrics].astype(float)
        diff = (numbers.iloc[1] - numbers.iloc[0]).to_frame("difference").T
        frame = pd.concat([frame, diff])
        frame.index.name = "label"
    frame["version"] = frame["version"].astype("Int64")
    return frame


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
        sorted by model and version. A model without versions is left out.
    """
    rows = []
    for model in paged(client.search_registered_models):
        # search_model_versions leaves ModelVersion.aliases empty; the model knows them.
        aliases: dict[str, list[str]] = {}
        for alias, holder in (model.aliases or {}).items():
            aliases.setdefault(str(holder), []).append(alias)
        for mv in list_versions(client, model.name):
            run = find_run(client, mv.run_id)
            metrics = run.data.metrics if run else {}
            rows.append(
                {
                    "model": model.name,
                    "version": int(mv.version),
                    "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                    "created": _created(mv),
                    "status": mv.status,
                    "run_id": mv.run_id,
                    "model_type": _model_type(mv, run.data.params if run else {}),
                    **{k: metrics.get(k) for k in KEY_METRICS},
                }
            )
    columns = ["model", "version", "aliases", "created", "status", "run_id", "model_type"]
    frame = pd.DataFrame(rows, columns=[*columns, *KEY_METRICS])
    return frame.sort_values(["model", "version"], ignore_index=True)
