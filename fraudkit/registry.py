"""Model lifecycle on MLflow 3 aliases: promotion gates, rollback, comparison, history.

MLflow 3 deprecates registry stages; fraudkit maps the seed's ``Staging``/``Production`` to
the aliases ``staging``/``production`` and records every alias move as a registered-model
tag ``fraudkit.alias_move.<alias>.<time ns>`` holding JSON (from, to, time, user, reason,
evidence run, action). One tag per move keeps concurrent writers from overwriting each
other's history, and makes rollback a replay of that log.

Every function takes an :class:`mlflow.MlflowClient` first; :class:`fraudkit.MlflowManager`
exposes them as methods bound to its client (``mlflow_manager.promote_model(...)``).
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException

from fraudkit.config import MLFLOW_EXPERIMENTS, TAG_PREFIX, ExperimentType, stage_to_alias
from fraudkit.exceptions import PromotionRefused, RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MOVE_TAG_PREFIX = f"{TAG_PREFIX}alias_move."
MODEL_NAME_TAG = f"{TAG_PREFIX}model_name"
MODEL_VERSION_TAG = f"{TAG_PREFIX}model_version"
KEY_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "fraud_f1")

MANAGER_METHODS = frozenset(
    {
        "promote_model",
        "rollback_model",
        "compare_model_versions",
        "get_model_performance_history",
        "detect_performance_degradation",
        "get_registry_overview",
        "alias_history",
        "link_run_to_version",
        "get_version_by_alias",
    }
)


@dataclass(frozen=True)
class DegradationResult:
    """Outcome of :func:`detect_performance_degradation`."""

    model_name: str
    version: str
    metric: str
    degraded: bool
    baseline: float
    recent: float
    drop: float
    relative_drop: float
    tolerance: float
    runs: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a flat dict."""
        out = asdict(self)
        out["runs"] = ",".join(self.runs)
        return out


# -- small helpers ---------------------------------------------------------------------


def _paged(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Yield every item of a paged MLflow search, following page tokens."""
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def _registered_model(client: MlflowClient, name: str) -> Any:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(
            f"registered model {name!r} not found; log one with "
            "mlflow_manager.log_model_with_metadata(...) or check the name "
            "(`fraudkit dashboard registry` lists them)"
        ) from exc


def _version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    _registered_model(client, name)
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version}") from exc


def get_version_by_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """Return the version holding ``alias`` (a stage name is accepted too), or None."""
    alias = _alias(alias)
    _registered_model(client, model_name)
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _alias(stage_or_alias: str) -> str:
    return stage_to_alias(stage_or_alias)


def _run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException:
        return {}


# -- alias moves -----------------------------------------------------------------------


def move_alias(
    client: MlflowClient,
    model_name: str,
    alias: str,
    version: str | int,
    *,
    reason: str | None = None,
    evidence_run_id: str | None = None,
    action: str = "promote",
) -> dict[str, Any]:
    """Point ``alias`` at ``version`` and record the move; return the record."""
    current = get_version_by_alias(client, model_name, alias)
    record = {
        "alias": alias,
        "from": str(current.version) if current is not None else None,
        "to": str(version),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": _user(),
        "reason": reason,
        "evidence_run_id": evidence_run_id,
        "action": action,
    }
    client.set_registered_model_alias(model_name, alias, str(version))
    client.set_registered_model_tag(
        model_name, f"{MOVE_TAG_PREFIX}{alias}.{time.time_ns()}", json.dumps(record)
    )
    return record


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def discard_version(client: MlflowClient, model_name: str, version: str) -> None:
    """Delete a half-registered version (and its model when it was the only one)."""
    try:
        client.delete_model_version(model_name, str(version))
        if not list(client.search_model_versions(f"name = {_quote(model_name)}", max_results=1)):
            client.delete_registered_model(model_name)
    except MlflowException:
        pass  # best effort: the original error is what the caller needs to see


def alias_history(client: MlflowClient, model_name: str, alias: str | None = None) -> pd.DataFrame:
    """Return every recorded alias move of ``model_name`` (oldest first).

    Columns: alias, from, to, time, user, reason, evidence_run_id, action.
    """
    model = _registered_model(client, model_name)
    wanted = _alias(alias) if alias else None
    records = []
    for key, value in model.tags.items():
        if not key.startswith(MOVE_TAG_PREFIX):
            continue
        tag_alias, _, stamp = key[len(MOVE_TAG_PREFIX) :].rpartition(".")
        if wanted and tag_alias != wanted:
            continue
        records.append((int(stamp), json.loads(value)))
    records.sort(key=lambda item: item[0])
    columns = ["alias", "from", "to", "time", "user", "reason", "evidence_run_id", "action"]
    return pd.DataFrame([r for _, r in records], columns=columns)


def _holders(history: pd.DataFrame) -> list[str]:
    """Replay the move log as a stack: a promotion pushes, a rollback pops."""
    stack: list[str] = []
    for move in history.itertuples(index=False):
        if move.action == "rollback" and stack:
            stack.pop()
            if not stack or stack[-1] != move.to:
                stack.append(move.to)
        elif not stack or stack[-1] != move.to:
            stack.append(move.to)
    return stack


# -- lifecycle -------------------------------------------------------------------------


def promote_model(
    client: MlflowClient,
    model_name: str,
    version: str | int,
    stage: str = "Production",
    *,
    metric: str = "average_precision",
    min_improvement: float | None = None,
    require_significant_ab: bool = False,
    evidence_run_id: str | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Move the alias of ``stage`` to ``version`` if the gates pass.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    version : str or int
        The candidate version.
    stage : str
        ``"Production"`` or ``"Staging"`` (any case), or the alias itself.
    metric : str
        The metric the improvement gate compares, as logged on each version's source run.
    min_improvement : float, optional
        Absolute improvement on ``metric`` the candidate needs over the current holder.
        None disables the gate; with no current holder the gate passes.
    require_significant_ab : bool
        Require ``evidence_run_id`` to be an A/B-testing run whose summary says the
        candidate version won significantly.
    evidence_run_id : str, optional
        A run supporting the decision (recorded with the move).
    reason : str, optional
        Free text recorded with the move.

    Returns
    -------
    ModelVersion
        The candidate, now holding the alias.

    Raises
    ------
    PromotionRefused
        A gate refused the candidate; the message states the numbers. Nothing moved.
    RegistryError
        Unknown model or version.
    """
    alias = _alias(stage)
    candidate = _version(client, model_name, version)
    current = get_version_by_alias(client, model_name, alias)
    if min_improvement is not None and current is not None and current.version != candidate.version:
        _check_improvement(client, model_name, candidate, current, alias, metric, min_improvement)
    if require_significant_ab:
        _check_ab_evidence(client, model_name, candidate, evidence_run_id)
    move_alias(
        client,
        model_name,
        alias,
        candidate.version,
        reason=reason,
        evidence_run_id=evidence_run_id,
    )
    return client.get_model_version(model_name, candidate.version)


def _check_improvement(
    client: MlflowClient,
    model_name: str,
    candidate: ModelVersion,
    current: ModelVersion,
    alias: str,
    metric: str,
    min_improvement: float,
) -> None:
    new = _run_metrics(client, candidate.run_id).get(metric)
    old = _run_metrics(client, current.run_id).get(metric)
    if new is None or old is None:
        missing = candidate.version if new is None else current.version
        raise PromotionRefused(
            f"cannot gate on {metric!r}: version {missing} of {model_name!r} has no such "
            "metric logged on its run; choose a logged metric or min_improvement=None"
        )
    if new - old < min_improvement:
        raise PromotionRefused(
            f"version {candidate.version} of {model_name!r} refused for {alias!r}: {metric} "
            f"{new:.4f} vs {old:.4f} of version {current.version} (improvement "
            f"{new - old:+.4f} < required {min_improvement:+.4f})"
        )


def _check_ab_evidence(
    client: MlflowClient, model_name: str, candidate: ModelVersion, evidence_run_id: str | None
) -> None:
    if not evidence_run_id:
        raise PromotionRefused(
            "require_significant_ab=True needs evidence_run_id= naming an A/B-testing run"
        )
    try:
        run = client.get_run(evidence_run_id)
    except MlflowException as exc:
        raise PromotionRefused(f"evidence run {evidence_run_id!r} not found") from exc
    tags = run.data.tags
    if tags.get(f"{TAG_PREFIX}experiment_type") != ExperimentType.AB_TESTING.value:
        raise PromotionRefused(
            f"evidence run {evidence_run_id} is not an A/B-testing run (experiment "
            f"{MLFLOW_EXPERIMENTS['ab_testing']!r})"
        )
    summary = {
        k[len(f"{TAG_PREFIX}summary.") :]: v
        for k, v in tags.items()
        if k.startswith(f"{TAG_PREFIX}summary.")
    }
    winner = summary.get("winner")
    significant = summary.get("statistical_significance") == "True"
    winner_version = (
        summary.get(f"model_{winner.lower()}_version") if winner in ("A", "B") else None
    )
    if not significant or winner_version != str(candidate.version):
        raise PromotionRefused(
            f"A/B run {evidence_run_id} does not show version {candidate.version} of "
            f"{model_name!r} winning significantly (winner={winner}, winner version="
            f"{winner_version}, significant={significant}, p_value={summary.get('p_value')})"
        )


def rollback_model(
    client: MlflowClient,
    model_name: str,
    stage: str = "Production",
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Move the alias of ``stage`` back to its previous holder (or ``to_version``).

    Raises
    ------
    RegistryError
        No earlier holder is recorded (and ``to_version`` was not given), or the named
        version does not exist.
    """
    alias = _alias(stage)
    if to_version is not None:
        target = _version(client, model_name, to_version).version
    else:
        holders = [
            v
            for v in _holders(alias_history(client, model_name, alias))
            if _exists(client, model_name, v)
        ]
        if len(holders) < 2:
            raise RegistryError(
                f"no earlier holder of alias {alias!r} on {model_name!r} to roll back to; "
                "pass to_version= to choose one"
            )
        target = holders[-2]
    move_alias(client, model_name, alias, target, reason=reason or "rollback", action="rollback")
    return client.get_model_version(model_name, target)


def _exists(client: MlflowClient, model_name: str, version: str) -> bool:
    try:
        client.get_model_version(model_name, str(version))
    except MlflowException:
        return False
    return True


def _versions(client: MlflowClient, model_name: str) -> list[ModelVersion]:
    found = list(_paged(client.search_model_versions, filter_string=f"name = {_quote(model_name)}"))
    return sorted(found, key=lambda v: int(v.version))


def compare_model_versions(
    client: MlflowClient,
    model_name: str,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
) -> pd.DataFrame:
    """Compare versions side by side: one row per version plus a ``difference`` row.

    Parameters
    ----------
    stages : sequence of str, optional
        Stage or alias names (default ``["Production", "Staging"]``); ignored when
        ``versions`` is given.
    versions : sequence, optional
        Explicit version numbers.

    Returns
    -------
    DataFrame
        Index ``label`` (alias or ``v<N>``); columns alias, version, run_id, created,
        model_type, ``param.<name>`` and one column per metric logged on the source run.
        With exactly two versions a final row ``difference`` holds second minus first
        for every metric.

    Raises
    ------
    RegistryError
        Unknown model, version, or a stage whose alias is not set.
    """
    if versions:
        chosen = [
            (f"v{_version(client, model_name, v).version}", _version(client, model_name, v))
            for v in versions
        ]
    else:
        chosen = []
        for stage in stages or ["Production", "Staging"]:
            alias = _alias(stage)
            holder = get_version_by_alias(client, model_name, alias)
            if holder is None:
                raise RegistryError(
                    f"model {model_name!r} has no {alias!r} alias yet; promote a version with "
                    f"mlflow_manager.promote_model({model_name!r}, VERSION, {stage!r}) or "
                    "compare explicit versions=[...]"
                )
            chosen.append((alias, holder))
    rows = []
    metric_names: list[str] = []
    for label, mv in chosen:
        run = client.get_run(mv.run_id) if mv.run_id else None
        metrics = dict(run.data.metrics) if run else {}
        params = dict(run.data.params) if run else {}
        metric_names += [m for m in metrics if m not in metric_names]
        rows.append(
            {
                "label": label,
                "alias": ",".join(mv.aliases),
                "version": int(mv.version),
                "run_id": mv.run_id,
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC"),
                "model_type": mv.tags.get(f"{TAG_PREFIX}model_type", params.get("model_type")),
                **{f"param.{k}": v for k, v in sorted(params.items())},
                **metrics,
            }
        )
    frame = pd.DataFrame(rows).set_index("label")
    if len(frame) == 2:
        metric_cols = [c for c in metric_names if c in frame.columns]
        diff = frame[metric_cols].iloc[1] - frame[metric_cols].iloc[0]
        frame = pd.concat([frame, diff.to_frame("difference").T])
    return frame


def link_run_to_version(
    client: MlflowClient, run_id: str, model_name: str, version: str | int
) -> None:
    """Tag ``run_id`` as measuring ``model_name`` version ``version`` (monitoring runs)."""
    _version(client, model_name, version)
    client.set_tag(run_id, MODEL_NAME_TAG, model_name)
    client.set_tag(run_id, MODEL_VERSION_TAG, str(version))


def _measurement_runs(client: MlflowClient, model_name: str) -> list[Any]:
    experiment_ids = [
        e.experiment_id
        for e in _paged(client.search_experiments)
        if e.name in MLFLOW_EXPERIMENTS.values()
    ]
    if not experiment_ids:
        return []
    return list(
        _paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=f"tags.`{MODEL_NAME_TAG}` = {_quote(model_name)}",
        )
    )


def get_model_performance_history(
    client: MlflowClient, model_name: str, metrics: Iterable[str] | None = None
) -> pd.DataFrame:
    """Return the tidy performance history of every version of ``model_name``.

    One row per (version, run, metric, step, timestamp, value): the evaluation logged on
    each version's source run (``source="training"``) and every measurement a later run
    (monitoring) logged against the version (``source`` = that run's experiment type).

    Returns
    -------
    DataFrame
        Columns version (int), run_id, source, metric, step, timestamp (UTC), value,
        sorted by version, metric, timestamp and step.
    """
    wanted = set(metrics) if metrics is not None else None
    sources: list[tuple[str, str, str]] = []  # (version, run_id, source)
    for mv in _versions(client, model_name):
        if mv.run_id:
            sources.append((mv.version, mv.run_id, "training"))
    for run in _measurement_runs(client, model_name):
        version = run.data.tags.get(MODEL_VERSION_TAG)
        kind = run.data.tags.get(f"{TAG_PREFIX}experiment_type", "unknown")
        if version and (version, run.info.run_id, "training") not in sources:
            sources.append((version, run.info.run_id, kind))
    rows = []
    for version, run_id, source in sources:
        run_metrics = _run_metrics(client, run_id)
        for key in sorted(run_metrics):
            if wanted is not None and key not in wanted:
                continue
            for m in client.get_metric_history(run_id, key):
                rows.append((int(version), run_id, source, key, m.step, m.timestamp, m.value))
    frame = pd.DataFrame(
        rows, columns=["version", "run_id", "source", "metric", "step", "timestamp", "value"]
    )
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
) -> DegradationResult:
    """Compare recent measurements of a version with its training evaluation.

    Parameters
    ----------
    window : int
        How many of the most recent monitoring measurements to average.
    tolerance : float
        Allowed relative drop (0.1 = 10 % below the baseline) before ``degraded`` is True.
    stage : str
        Whose version to check when ``version`` is not given (default the production one).

    Raises
    ------
    RegistryError
        No version holds the stage's alias, or the baseline metric is missing.
    """
    if window < 1 or not 0 <= tolerance < 1:
        raise RegistryError("window must be >= 1 and tolerance in [0, 1)")
    if version is None:
        holder = get_version_by_alias(client, model_name, stage)
        if holder is None:
            raise RegistryError(f"model {model_name!r} has no {_alias(stage)!r} alias to check")
        version = holder.version
    history = get_model_performance_history(client, model_name, metrics=[metric])
    mine = history[history["version"] == int(version)]
    baseline_rows = mine[mine["source"] == "training"]
    if baseline_rows.empty:
        raise RegistryError(
            f"version {version} of {model_name!r} has no {metric!r} on its training run"
        )
    baseline = float(baseline_rows["value"].iloc[-1])
    measured = mine[mine["source"] != "training"].tail(window)
    recent = float(measured["value"].mean()) if not measured.empty else baseline
    drop = baseline - recent
    relative = drop / baseline if baseline else 0.0
    return DegradationResult(
        model_name=model_name,
        version=str(version),
        metric=metric,
        degraded=bool(not measured.empty and relative > tolerance),
        baseline=baseline,
        recent=recent,
        drop=drop,
        relative_drop=relative,
        tolerance=tolerance,
        runs=tuple(dict.fromkeys(measured["run_id"])),
    )


def get_registry_overview(client: MlflowClient) -> pd.DataFrame:
    """Return one row per registered model version with aliases and key metrics.

    Columns: model, version, aliases, created, status, run_id, model_type and the key
    metrics (average_precision, roc_auc, fraud_precision, fraud_recall, fraud_f1).
    """
    rows = []
    for model in _paged(client.search_registered_models):
        for mv in _versions(client, model.name):
            metrics = _run_metrics(client, mv.run_id)
            rows.append(
                {
                    "model": model.name,
                    "version": int(mv.version),
                    "aliases": ",".join(sorted(mv.aliases)),
                    "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC"),
                    "status": mv.status,
                    "run_id": mv.run_id,
                    "model_type": mv.tags.get(f"{TAG_PREFIX}model_type"),
                    **{k: metrics.get(k) for k in KEY_METRICS},
                }
            )
    columns = [
        "model",
        "version",
        "aliases",
        "created",
        "status",
        "run_id",
        "model_type",
        *KEY_METRICS,
    ]
    return pd.DataFrame(rows, columns=columns)
