"""Model lifecycle on MLflow 3 aliases: promotion gates, rollback, comparison, history.

MLflow 3 deprecates registry stages; fraudkit maps the seed's ``Staging``/``Production`` to
the aliases ``staging``/``production`` and records every alias move as a registered-model
tag ``fraudkit.alias_move.<alias>.<time ns>`` holding JSON (from, to, time, user, reason,
evidence run, action). One tag per move keeps concurrent writers from overwriting each
other's history, and makes rollback a replay of that log.

Every function takes an :class:`mlflow.MlflowClient` first; :class:`fraudkit.MlflowManager`
exposes them as methods bound to its client (``mlflow_manager.promote_model(...)``).

Every registry query pages through MLflow's search results, so it works the same on the
embedded SQLite store and on a remote tracking server however many versions exist.
"""

from __future__ import annotations

import getpass
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException

from fraudkit.config import TAG_PREFIX, ExperimentType, stage_to_alias
from fraudkit.exceptions import (
    ConfigurationError,
    DataValidationError,
    PromotionRefused,
    RegistryError,
)

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

MOVE_TAG_PREFIX = f"{TAG_PREFIX}alias_move."
MODEL_NAME_TAG = f"{TAG_PREFIX}model_name"
MODEL_VERSION_TAG = f"{TAG_PREFIX}model_version"
SUMMARY_TAG_PREFIX = f"{TAG_PREFIX}summary."
EXPERIMENT_TYPE_TAG = f"{TAG_PREFIX}experiment_type"
# Version tags set by MlflowManager.log_model_with_metadata: the MLflow 3 logged model
# behind the version (SQL registries leave ModelVersion.model_id empty) and the dataset its
# evaluation metrics were measured on.
MODEL_ID_TAG = f"{TAG_PREFIX}model_id"
EVAL_DATASET_TAG = f"{TAG_PREFIX}eval_dataset"
EVAL_DIGEST_TAG = f"{TAG_PREFIX}eval_digest"
# Runs whose summary may hold an A/B comparison of two versions (metric_a, metric_b): the
# A/B-testing notebook's, and the retraining notebook's, which A/B-tests its new model.
AB_EVIDENCE_TYPES = (ExperimentType.AB_TESTING.value, ExperimentType.RETRAINING.value)
KEY_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "fraud_f1")
TRAINING_SOURCE = "training"
HISTORY_COLUMNS = ["version", "run_id", "source", "metric", "step", "timestamp", "value"]
MOVE_COLUMNS = [
    "alias",
    "from",
    "to",
    "time",
    "user",
    "reason",
    "evidence_run_id",
    "action",
    "gate",
]

# Within every search API's limit (registered models allow at most 1000 per page).
_PAGE_SIZE = 1000
# Registered-model tag values are VARCHAR(5000) on SQL stores; leave room for the record.
_MAX_REASON = 2000
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")

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
        "resolve_model_uri",
    }
)


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


# -- small helpers ---------------------------------------------------------------------


def _paged(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Yield every item of a paged MLflow search, following page tokens."""
    kwargs.setdefault("max_results", _PAGE_SIZE)
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:  # None on SQL stores, "" over REST
            return


def _quote(value: str) -> str:
    # MLflow's filter parser strips the surrounding quotes but knows no escapes.
    text = str(value)
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise RegistryError(f"name {text!r} holds both quote characters; MLflow cannot search it")


def _is_missing(exc: MlflowException) -> bool:
    return exc.error_code in _MISSING_CODES


def _registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        raise RegistryError(
            f"registered model {name!r} not found; log one with "
            "mlflow_manager.log_model_with_metadata(...) or check the name "
            "(mlflow_manager.get_registry_overview() lists them)"
        ) from exc


def _version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    number = str(version).strip()
    try:
        if number.isdigit():
            return client.get_model_version(name, number)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
    _registered_model(client, name)  # an unknown model is the better message
    known = ", ".join(str(v.version) for v in _versions(client, name)) or "none"
    raise RegistryError(f"model {name!r} has no version {number!r}; its versions: {known}")


def _versions(client: MlflowClient, model_name: str) -> list[ModelVersion]:
    """All versions of ``model_name``, oldest first (their ``aliases`` are NOT filled in)."""
    found = _paged(client.search_model_versions, filter_string=f"name = {_quote(model_name)}")
    return sorted(found, key=lambda v: int(v.version))


def _alias(stage_or_alias: str) -> str:
    return stage_to_alias(stage_or_alias)


def get_version_by_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """Return the version holding ``alias`` (a stage name is accepted too), or None.

    Raises
    ------
    RegistryError
        Unknown model.
    ConfigurationError
        Unknown stage or alias.
    """
    holder = _holder_version(_registered_model(client, model_name), _alias(alias))
    return None if holder is None else client.get_model_version(model_name, holder)


def resolve_model_uri(client: MlflowClient, uri: str) -> ModelVersion | None:
    """Return the registered version a ``models:/name@alias`` or ``models:/name/N`` URI names.

    Other URIs (``runs:/...``, paths) name no registered version: None.

    Raises
    ------
    RegistryError
        The model, version or alias does not exist.
    """
    if not uri.startswith("models:/"):
        return None
    reference = uri[len("models:/") :].strip("/")
    if "@" in reference:
        name, alias = reference.rsplit("@", 1)
        model = _registered_model(client, name)
        holder = _holder_version(model, alias)
        if holder is None:
            known = ", ".join(sorted(model.aliases or {})) or "none yet"
            raise RegistryError(
                f"{uri}: model {name!r} has no alias {alias!r}; its aliases: {known}"
            )
        return client.get_model_version(name, holder)
    name, _, version = reference.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(
            f"cannot read model URI {uri!r}; use models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    return _version(client, name, version)


def _holder_version(model: RegisteredModel, alias: str) -> str | None:
    holder = (model.aliases or {}).get(alias)
    return None if holder is None else str(holder)


def _run(client: MlflowClient, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        return None


def _run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    run = _run(client, run_id)
    return dict(run.data.metrics) if run else {}


def _model_type(mv: ModelVersion, params: dict[str, str]) -> str | None:
    tags = mv.tags or {}
    return (
        tags.get(f"{TAG_PREFIX}model_type")
        or params.get("model_type")
        or tags.get(f"{TAG_PREFIX}model_class")
    )


def _created(mv: ModelVersion) -> pd.Timestamp:
    return pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC")


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
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at ``version`` and record the move; return the record.

    No gate is applied (see :func:`promote_model`); ``gate`` is the evidence of one that
    was, recorded with the move. When the record cannot be written the alias is put back,
    so the history never misses a move.
    """
    alias = _alias(alias)
    current = _holder_version(_registered_model(client, model_name), alias)
    stamp = time.time_ns()
    record = {
        "alias": alias,
        "from": current,
        "to": str(version),
        "time": datetime.fromtimestamp(stamp / 1e9, UTC).isoformat(timespec="seconds"),
        "user": _user(),
        "reason": reason[:_MAX_REASON] if reason else None,
        "evidence_run_id": evidence_run_id,
        "action": action,
        "gate": gate,
    }
    client.set_registered_model_alias(model_name, alias, str(version))
    try:
        client.set_registered_model_tag(
            model_name, f"{MOVE_TAG_PREFIX}{alias}.{stamp}", json.dumps(record)
        )
    except BaseException:
        if current is None:
            client.delete_registered_model_alias(model_name, alias)
        else:
            client.set_registered_model_alias(model_name, alias, current)
        raise
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
    except (MlflowException, RegistryError):
        pass  # best effort: the original error is what the caller needs to see


def alias_history(client: MlflowClient, model_name: str, alias: str | None = None) -> pd.DataFrame:
    """Return every recorded alias move of ``model_name``, oldest first.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    alias : str, optional
        Only moves of this alias (or stage); default all.

    Returns
    -------
    DataFrame
        Columns alias, from, to (version strings; ``from`` is missing for a first move),
        time (UTC), user, reason, evidence_run_id, action (``promote`` or ``rollback``),
        gate (for a promotion through the improvement gate, a dict of what it compared:
        metric, candidate and holder values, dataset name and digest, source; else None).

    Raises
    ------
    RegistryError
        Unknown model.
    """
    return _moves(_registered_model(client, model_name), _alias(alias) if alias else None)


def _moves(model: RegisteredModel, wanted: str | None) -> pd.DataFrame:
    records = []
    for key, value in model.tags.items():
        if not key.startswith(MOVE_TAG_PREFIX):
            continue
        tag_alias, _, stamp = key[len(MOVE_TAG_PREFIX) :].rpartition(".")
        if stamp.isdigit() and (wanted is None or tag_alias == wanted):
            records.append((int(stamp), json.loads(value)))
    records.sort(key=lambda item: item[0])
    frame = pd.DataFrame([r for _, r in records], columns=MOVE_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def _holders(history: pd.DataFrame) -> list[str]:
    """Replay the move log as a stack: a promotion pushes, a rollback pops back to its target.

    A rollback to a version that never held the alias acts as a promotion.
    """
    stack: list[str] = []
    for move in history.itertuples(index=False):
        if move.action == "rollback" and move.to in stack:
            del stack[len(stack) - stack[::-1].index(move.to) :]
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
        :func:`fraudkit.metrics.evaluate`.
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
    alias = _alias(stage)
    candidate = _version(client, model_name, version)
    if candidate.status != "READY":
        raise RegistryError(
            f"version {candidate.version} of {model_name!r} is {candidate.status}, not READY; "
            "only a fully registered version can be promoted"
        )
    current = _holder_version(_registered_model(client, model_name), alias)
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
            f"{new:.4f} vs {old:.4f} of version {holder.version} (improvement "
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
        if not _is_missing(exc):
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
    from fraudkit.data import LABEL_COLUMN, data_fingerprint
    from fraudkit.metrics import evaluate

    if LABEL_COLUMN not in getattr(frame, "columns", ()):
        raise DataValidationError(
            "evaluation_data must be labelled transactions (a DataFrame with a "
            f"{LABEL_COLUMN!r} column) to score both versions on"
        )
    values = []
    for mv in (candidate, holder):
        scores = _scores(client, model_name, mv, frame)
        threshold = _run_metrics(client, mv.run_id).get("threshold")
        measured = evaluate(frame[LABEL_COLUMN], scores, threshold=threshold)
        if metric not in measured:
            raise PromotionRefused(
                f"cannot gate on {metric!r} with evaluation_data: fraudkit.metrics.evaluate "
                f"computes {', '.join(sorted(measured))}; choose one of them as metric="
            )
        values.append(measured[metric])
    if not all(math.isfinite(v) for v in values):
        raise PromotionRefused(
            f"{metric} is undefined on evaluation_data (one class only); pass transactions "
            "holding both frauds and legitimate ones"
        )
    return _gate(metric, *values, "evaluation_data", data_fingerprint(frame), "evaluation_data")


def _scores(
    client: MlflowClient, model_name: str, mv: ModelVersion, frame: pd.DataFrame
) -> np.ndarray:
    """Fraud scores of version ``mv`` on ``frame``, the model loaded as it is served."""
    import mlflow.artifacts
    import mlflow.pyfunc

    from fraudkit.models import predict_scores

    uri = f"models:/{model_name}/{mv.version}"
    with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder:
        try:
            # The client's store, not mlflow's global URIs, which may point elsewhere;
            # fraudkit keeps the registry in the tracking store.
            path = mlflow.artifacts.download_artifacts(
                uri,
                dst_path=folder,
                tracking_uri=client.tracking_uri,
                registry_uri=client.tracking_uri,
            )
            model = mlflow.pyfunc.load_model(path)
        except (MlflowException, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
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
    run = _run(client, evidence_run_id)
    if run is None or run.info.lifecycle_stage == "deleted":
        return f"evidence run {evidence_run_id} not found (or deleted)"
    kind = run.data.tags.get(EXPERIMENT_TYPE_TAG)
    if kind not in AB_EVIDENCE_TYPES:
        return f"evidence run {evidence_run_id} is a {kind} run, not an A/B-testing one"
    summary = _summary(run)
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
    digest = summary.get("dataset_digest") or run.data.tags.get(
        f"{TAG_PREFIX}data_fingerprint.evaluation"
    )
    dataset = summary.get("dataset_name", f"the data of A/B run {evidence_run_id}")
    return _gate(metric, *values, dataset, digest, f"A/B run {evidence_run_id}")


def _summary(run: Run) -> dict[str, str]:
    """The scalars ``run`` logged with ``log_experiment_summary``, as their tag strings."""
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
    run = _run(client, evidence_run_id)
    if run is None or run.info.lifecycle_stage == "deleted":
        raise PromotionRefused(f"evidence run {evidence_run_id!r} not found (or deleted)")
    if run.data.tags.get(EXPERIMENT_TYPE_TAG) != ExperimentType.AB_TESTING.value:
        raise PromotionRefused(
            f"evidence run {evidence_run_id} is not an A/B-testing run (start it with "
            f"mlflow_manager.start_ab_test_run; experiment "
            f"{ExperimentType.AB_TESTING.experiment_name!r})"
        )
    summary = _summary(run)
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


def rollback_model(
    client: MlflowClient,
    model_name: str,
    stage: str = "Production",
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Move the alias of ``stage`` back to its previous holder (or to ``to_version``).

    The previous holder comes from replaying the recorded moves: each rollback undoes one
    promotion, so two rollbacks after three promotions return to the first version.
    Versions deleted since are skipped. The rollback is recorded like any move.

    Parameters
    ----------
    client : MlflowClient
    model_name : str
    stage : str
        ``"Production"`` or ``"Staging"`` (any case), or the alias itself.
    to_version : str or int, optional
        Roll back to this version instead (no gate is applied).
    reason : str, optional
        Recorded with the move (default ``"rollback"``).

    Returns
    -------
    ModelVersion
        The version now holding the alias.

    Raises
    ------
    RegistryError
        Unknown model or version, or no earlier holder is recorded and ``to_version`` was
        not given.
    """
    alias = _alias(stage)
    model = _registered_model(client, model_name)
    current = _holder_version(model, alias)
    if to_version is not None:
        target = str(_version(client, model_name, to_version).version)
    else:
        existing = {str(v.version) for v in _versions(client, model_name)}
        history = _moves(model, alias)
        holders = [v for v in _holders(history) if v in existing]
        while holders and holders[-1] == current:
            holders.pop()
        if not holders:
            raise RegistryError(
                f"no earlier holder of alias {alias!r} on {model_name!r} to roll back to "
                f"({len(history)} moves recorded); pass to_version= to choose one"
            )
        target = holders[-1]
    if target != current:
        move_alias(
            client, model_name, alias, target, reason=reason or "rollback", action="rollback"
        )
    return client.get_model_version(model_name, target)


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
        found = [_version(client, model_name, v) for v in versions]
        chosen = [(f"v{mv.version}", mv) for mv in found]
    else:
        chosen = [
            (_alias(stage), _holder(client, model_name, stage))
            for stage in stages or ["Production", "Staging"]
        ]
    rows, metric_names, param_names = [], set(), set()
    for label, mv in chosen:
        run = _run(client, mv.run_id)
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
    fixed = ["alias", "version", "run_id", "created", "model_type"]
    frame = pd.DataFrame(rows).set_index("label")
    frame = frame[fixed + sorted(metric_names) + sorted(param_names)]
    if len(frame) == 2:
        numbers = frame[sorted(metric_names)].astype(float)
        diff = (numbers.iloc[1] - numbers.iloc[0]).to_frame("difference").T
        frame = pd.concat([frame, diff])
        frame.index.name = "label"
    frame["version"] = frame["version"].astype("Int64")
    return frame


def _holder(client: MlflowClient, model_name: str, stage: str) -> ModelVersion:
    holder = get_version_by_alias(client, model_name, stage)
    if holder is None:
        raise RegistryError(
            f"model {model_name!r} has no {_alias(stage)!r} alias yet; promote a version with "
            f"mlflow_manager.promote_model({model_name!r}, VERSION, {stage!r}) or compare "
            "explicit versions=[...]"
        )
    return holder


def link_run_to_version(
    client: MlflowClient, run_id: str, model_name: str, version: str | int
) -> None:
    """Tag ``run_id`` as measuring ``model_name`` version ``version`` (monitoring runs).

    Its metrics then appear in :func:`get_model_performance_history` for that version.

    Raises
    ------
    RegistryError
        Unknown model, version or run.
    """
    mv = _version(client, model_name, version)
    if _run(client, run_id) is None:
        raise RegistryError(f"run {run_id!r} not found; link an existing run")
    tags = [RunTag(MODEL_NAME_TAG, model_name), RunTag(MODEL_VERSION_TAG, str(mv.version))]
    client.log_batch(run_id, tags=tags)


def _linked_runs(client: MlflowClient, model_name: str) -> Iterator[Run]:
    experiment_ids = [e.experiment_id for e in _paged(client.search_experiments)]
    if experiment_ids:
        yield from _paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=f"tags.`{MODEL_NAME_TAG}` = {_quote(model_name)}",
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
    _registered_model(client, model_name)
    wanted = set(metrics) if metrics is not None else None
    sources: dict[tuple[str, str], tuple[str, Iterable[str]]] = {}  # (version, run) -> ...
    for mv in _versions(client, model_name):
        run = _run(client, mv.run_id)
        if run is not None:
            sources[(str(mv.version), mv.run_id)] = (TRAINING_SOURCE, run.data.metrics)
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
        mv = _holder(client, model_name, stage)
    else:
        mv = _version(client, model_name, version)
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
    for model in _paged(client.search_registered_models):
        # search_model_versions leaves ModelVersion.aliases empty; the model knows them.
        aliases: dict[str, list[str]] = {}
        for alias, holder in (model.aliases or {}).items():
            aliases.setdefault(str(holder), []).append(alias)
        for mv in _versions(client, model.name):
            run = _run(client, mv.run_id)
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
