"""Promotion through gates: a version takes an alias only on evidence measured on the same data.

:func:`promote_model` moves the alias of a stage (``Production`` -> ``production``) to a
candidate version when its gates pass, and records the move with what it compared (see
:func:`fraudkit.tracking.registry.alias_history`). The improvement gate compares the candidate with
the current holder on one dataset (same digest) or refuses; the A/B gate asks for a
significant win in an A/B-testing run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException

from fraudkit.core.config import ExperimentType, stage_to_alias
from fraudkit.core.exceptions import (
    DataValidationError,
    ModelError,
    PromotionRefused,
    RegistryError,
)
from fraudkit.core.tags import (
    EVAL_DATASET_TAG,
    EVAL_DIGEST_TAG,
    EXPERIMENT_TYPE_TAG,
    MODEL_ID_TAG,
    SUMMARY_TAG_PREFIX,
    data_fingerprint_tag,
)
from fraudkit.tracking.registry import (
    alias_holder,
    get_version,
    load_model,
    move_alias,
    registered_model,
)
from fraudkit.tracking.store import find_run, is_missing, run_metrics

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

__all__ = ["AB_EVIDENCE_TYPES", "promote_model", "run_summary"]

# Runs whose summary may hold an A/B comparison of two versions (metric_a, metric_b): the
# A/B-testing notebook's, and the retraining notebook's, which A/B-tests its new model.
AB_EVIDENCE_TYPES = (ExperimentType.AB_TESTING.value, ExperimentType.RETRAINING.value)


def promote_model(
    client: MlflowClient,
    model_name: str,
    version: str | int,
    stage: str = "Production",
    *,
    metric: str = "average_precision",
    min_improvement: float | None = None,
    evaluation_data: pd.DataFrame | None = None,
    require_significant_ab: bool = False,
    evidence_run_id: str | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Move the alias of ``stage`` to ``version`` if the gates pass, and record the move.

    Promoting the version that already holds the alias changes and records nothing.

    The improvement gate compares the candidate with the current holder on the same data
    or not at all. It takes the first of:

    1. ``metric`` linked to both versions' logged models on one dataset (same digest), as
       :meth:`~fraudkit.MlflowManager.log_model_with_metadata` records it when given
       ``evaluation_dataset=``; the dataset the candidate was measured on last, if several;
    2. both versions loaded and scored on ``evaluation_data``;
    3. the two versions' values in the summary of ``evidence_run_id``: an A/B-testing run,
       or a retraining run (the retraining notebook A/B-tests its new model against
       production), whose summary names both versions (``model_a_version``,
       ``model_b_version``), the metric (``metric``) and its values (``metric_a``,
       ``metric_b``), and ideally the data (``dataset_digest``, ``dataset_name``).

    Otherwise it refuses, naming the data each version was measured on. What it compared
    is recorded with the move (:func:`alias_history`, column ``gate``).

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    version : str or int
        The candidate version.
    stage : str
        ``"Production"`` or ``"Staging"`` (any case), or the alias itself.
    metric : str
        The metric the improvement gate compares, higher being better, named as by
        :func:`fraudkit.science.metrics.evaluate`.
    min_improvement : float, optional
        Absolute improvement on ``metric`` the candidate needs over the current holder
        (``0.0``: at least as good). None disables the gate; with no current holder the
        gate passes.
    evaluation_data : DataFrame, optional
        Labelled transactions to score both versions on when their logged metrics share no
        dataset. Each is scored as served (pyfunc) at the ``threshold`` logged on its run;
        the data's fingerprint and both values are recorded with the move.
    require_significant_ab : bool
        Require ``evidence_run_id`` to be an A/B-testing run whose summary (logged with
        ``log_experiment_summary``) names the candidate as a significant winner: ``winner``
        "A" or "B", ``statistical_significance`` true and ``model_<winner>_version`` equal
        to ``version``.
    evidence_run_id : str, optional
        A run supporting the decision (recorded with the move); a source of the
        improvement gate as described above.
    reason : str, optional
        Free text recorded with the move.

    Returns
    -------
    ModelVersion
        The candidate, now holding the alias.

    Raises
    ------
    PromotionRefused
        A gate refused the candidate, or the two versions cannot be compared on the same
        data; the message states the numbers and the data. Nothing moved.
    DataValidationError
        ``evaluation_data`` holds no valid ``Class`` labels.
    RegistryError
        Unknown model or version, or a version that is not ready.
    """
    alias = stage_to_alias(stage)
    candidate = get_version(client, model_name, version)
    if candidate.status != "READY":
        raise RegistryError(
            f"version {candidate.version} of {model_name!r} is {candidate.status}, not READY; "
            "only a fully registered version can be promoted"
        )
    current = alias_holder(registered_model(client, model_name), alias)
    if current == str(candidate.version):
        return candidate
    if require_significant_ab:
        # The cheap gate first: a refused A/B test costs no model loading.
        _check_ab_evidence(client, model_name, candidate, evidence_run_id)
    gate = None
    if min_improvement is not None and current is not None:
        holder = client.get_model_version(model_name, current)
        gate = _check_improvement(
            client,
            model_name,
            candidate,
            holder,
            alias,
            metric,
            min_improvement,
            evaluation_data=evaluation_data,
            evidence_run_id=evidence_run_id,
        )
    move_alias(
        client,
        model_name,
        alias,
        candidate.version,
        reason=reason,
        evidence_run_id=evidence_run_id,
        gate=gate,
    )
    return client.get_model_version(model_name, str(candidate.version))


def _check_improvement(
    client: MlflowClient,
    model_name: str,
    candidate: ModelVersion,
    holder: ModelVersion,
    alias: str,
    metric: str,
    min_improvement: float,
    *,
    evaluation_data: pd.DataFrame | None,
    evidence_run_id: str | None,
) -> dict[str, Any]:
    """Compare both versions on ``metric`` on the same data; return what was compared."""
    gate = _linked_comparison(client, candidate, holder, metric)
    if gate is None and evaluation_data is not None:
        gate = _scored_comparison(client, model_name, candidate, holder, metric, evaluation_data)
    if gate is None:
        found = _ab_comparison(client, model_name, candidate, holder, metric, evidence_run_id)
        if isinstance(found, str):
            why = f"; {found}" if evidence_run_id else ""
            raise PromotionRefused(
                f"version {candidate.version} of {model_name!r} refused for {alias!r}: no "
                f"{metric} of versions {candidate.version} and {holder.version} measured on "
                f"the same data (version {candidate.version} was evaluated on "
                f"{_evaluation_data(candidate)}, version {holder.version} on "
                f"{_evaluation_data(holder)}{why}); pass evaluation_data= (labelled "
                "transactions to score both on) or evidence_run_id= of an A/B run that scored "
                "both"
            )
        gate = found
    new, old = gate["candidate_value"], gate["holder_value"]
    if not new - old >= min_improvement:  # a NaN value fails too
        digest = gate["digest"] or "unknown"
        raise PromotionRefused(
            f"version {candidate.version} of {model_name!r} refused for {alias!r}: {metric} "
            f"{new:.4f} vs {old:.4f} of version {holder.version} (difference "
            f"{new - old:+.4f} < required {min_improvement:+.4f}) on {gate['dataset']} "
            f"(digest {digest}, from {gate['source']})"
        )
    return gate


def _gate(
    metric: str, new: float, old: float, dataset: str, digest: str | None, source: str
) -> dict[str, Any]:
    return {
        "metric": metric,
        "candidate_value": float(new),
        "holder_value": float(old),
        "dataset": dataset,
        "digest": digest,
        "source": source,
    }


def _evaluation_data(mv: ModelVersion) -> str:
    tags = mv.tags or {}
    digest = tags.get(EVAL_DIGEST_TAG)
    return f"{tags.get(EVAL_DATASET_TAG)} (digest {digest})" if digest else "unknown data"


def _linked_metrics(
    client: MlflowClient, mv: ModelVersion, metric: str
) -> dict[str, tuple[int, str, float]]:
    """``{digest: (timestamp, dataset name, value)}`` of ``metric`` linked to ``mv``'s model."""
    model_id = mv.model_id or (mv.tags or {}).get(MODEL_ID_TAG)
    if not model_id:  # not logged by fraudkit as an MLflow 3 logged model
        return {}
    try:
        logged = client.get_logged_model(model_id)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        return {}
    found = {}
    for m in sorted(logged.metrics or [], key=lambda m: (m.timestamp, m.step)):
        if m.key == metric and m.dataset_digest:
            found[m.dataset_digest] = (m.timestamp, m.dataset_name, m.value)
    return found


def _linked_comparison(
    client: MlflowClient, candidate: ModelVersion, holder: ModelVersion, metric: str
) -> dict[str, Any] | None:
    new = _linked_metrics(client, candidate, metric)
    old = _linked_metrics(client, holder, metric)
    shared = new.keys() & old.keys()
    if not shared:
        return None
    digest = max(shared, key=lambda d: new[d][0])
    return _gate(metric, new[digest][2], old[digest][2], new[digest][1], digest, "linked metrics")


def _scored_comparison(
    client: MlflowClient,
    model_name: str,
    candidate: ModelVersion,
    holder: ModelVersion,
    metric: str,
    frame: pd.DataFrame,
) -> dict[str, Any]:
    # Imported here: scoring needs scikit-learn, which other registry users (the CLI) don't.
    from fraudkit.core.schema import LABEL_COLUMN
    from fraudkit.science.data import data_fingerprint
    from fraudkit.science.metrics import evaluate

    if LABEL_COLUMN not in getattr(frame, "columns", ()):
        raise DataValidationError(
            "evaluation_data must be labelled transactions (a DataFrame with a "
            f"{LABEL_COLUMN!r} column) to score both versions on"
        )
    values = []
    for mv in (candidate, holder):
        scores = _scores(client, model_name, mv, frame)
        threshold = run_metrics(client, mv.run_id).get("threshold")
        measured = evaluate(frame[LABEL_COLUMN], scores, threshold=threshold)
        if metric not in measured:
            raise PromotionRefused(
                f"cannot gate on {metric!r} with evaluation_data: "
                f"fraudkit.science.metrics.evaluate computes {', '.join(sorted(measured))}; "
                "choose one of them as metric="
            )
        values.append(measured[metric])
    if not all(math.isfinite(v) for v in values):
        raise PromotionRefused(
            f"{metric} is undefined on evaluation_data (one class only); pass transactions "
            "holding both frauds and legitimate ones"
        )
    new, old = values
    return _gate(metric, new, old, "evaluation_data", data_fingerprint(frame), "evaluation_data")


def _scores(
    client: MlflowClient, model_name: str, mv: ModelVersion, frame: pd.DataFrame
) -> np.ndarray:
    """Fraud scores of version ``mv`` on ``frame``, the model loaded as it is served."""
    from fraudkit.science.models import predict_scores

    uri = f"models:/{model_name}/{mv.version}"
    try:
        model = load_model(uri, client=client)
    except ModelError as exc:
        cause = exc.__cause__ or exc
        first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise PromotionRefused(
            f"cannot score version {mv.version} of {model_name!r} on evaluation_data: "
            f"loading {uri} failed ({first}); log it with "
            "mlflow_manager.log_model_with_metadata, or compare with evidence_run_id="
        ) from exc
    return predict_scores(model, frame)


def _ab_comparison(
    client: MlflowClient,
    model_name: str,
    candidate: ModelVersion,
    holder: ModelVersion,
    metric: str,
    evidence_run_id: str | None,
) -> dict[str, Any] | str:
    """Both versions' ``metric`` from the A/B summary of ``evidence_run_id``, or why not."""
    run = find_run(client, evidence_run_id)
    if run is None or run.info.lifecycle_stage == "deleted":
        return f"evidence run {evidence_run_id} not found (or deleted)"
    kind = run.data.tags.get(EXPERIMENT_TYPE_TAG)
    if kind not in AB_EVIDENCE_TYPES:
        return f"evidence run {evidence_run_id} is a {kind} run, not an A/B-testing one"
    summary = run_summary(run)
    letters = {summary.get("model_a_version"): "a", summary.get("model_b_version"): "b"}
    new, old = letters.get(str(candidate.version)), letters.get(str(holder.version))
    if summary.get("model_name", model_name) != model_name or new is None or old is None:
        return (
            f"evidence run {evidence_run_id} did not A/B-test versions {candidate.version} and "
            f"{holder.version} of {model_name!r} (summary model_name="
            f"{summary.get('model_name')}, model_a_version={summary.get('model_a_version')}, "
            f"model_b_version={summary.get('model_b_version')})"
        )
    if summary.get("metric") != metric:
        return (
            f"evidence run {evidence_run_id} compared metric={summary.get('metric')}, not {metric}"
        )
    try:
        values = float(summary[f"metric_{new}"]), float(summary[f"metric_{old}"])
    except (KeyError, ValueError):
        return f"evidence run {evidence_run_id} holds no metric_a and metric_b in its summary"
    digest = summary.get("dataset_digest") or run.data.tags.get(data_fingerprint_tag("evaluation"))
    dataset = summary.get("dataset_name", f"the data of A/B run {evidence_run_id}")
    return _gate(metric, *values, dataset, digest, f"A/B run {evidence_run_id}")


def run_summary(run: Run) -> dict[str, str]:
    """Return the scalars ``run`` logged with ``log_experiment_summary``, as their tag strings.

    Parameters
    ----------
    run : mlflow.entities.Run

    Returns
    -------
    dict
        ``{key: value}`` without the ``fraudkit.summary.`` prefix.
    """
    return {
        k.removeprefix(SUMMARY_TAG_PREFIX): v
        for k, v in run.data.tags.items()
        if k.startswith(SUMMARY_TAG_PREFIX)
    }


def _check_ab_evidence(
    client: MlflowClient, model_name: str, candidate: ModelVersion, evidence_run_id: str | None
) -> None:
    if not evidence_run_id:
        raise PromotionRefused(
            "require_significant_ab=True needs evidence_run_id= naming an A/B-testing run "
            "that logged its summary with mlflow_manager.log_experiment_summary"
        )
    run = find_run(client, evidence_run_id)
    if run is None or run.info.lifecycle_stage == "deleted":
        raise PromotionRefused(f"evidence run {evidence_run_id!r} not found (or deleted)")
    if run.data.tags.get(EXPERIMENT_TYPE_TAG) != ExperimentType.AB_TESTING.value:
        raise PromotionRefused(
            f"evidence run {evidence_run_id} is not an A/B-testing run (start it with "
            f"mlflow_manager.start_ab_test_run; experiment "
            f"{ExperimentType.AB_TESTING.experiment_name!r})"
        )
    summary = run_summary(run)
    if summary.get("model_name", model_name) != model_name:
        raise PromotionRefused(
            f"A/B run {evidence_run_id} tested model {summary['model_name']!r}, not {model_name!r}"
        )
    winner = summary.get("winner")
    letter = (winner or "").upper()
    significant = summary.get("statistical_significance", "").lower() in ("true", "1", "1.0")
    winner_version = None
    if letter in ("A", "B"):
        winner_version = summary.get(f"model_{letter.lower()}_version")
    if not significant or winner_version != str(candidate.version):
        raise PromotionRefused(
            f"A/B run {evidence_run_id} does not show version {candidate.version} of "
            f"{model_name!r} winning significantly (winner={winner}, winner version="
            f"{winner_version}, significant={significant}, p_value={summary.get('p_value')}); "
            "its summary needs winner, statistical_significance and model_a_version/"
            "model_b_version"
        )
