"""Params, metrics and tags of a run, logged in batches under one set of policies.

:class:`~fraudkit.MlflowManager`'s ``log_params``, ``log_metrics``, ``set_tags`` and
``log_experiment_summary`` resolve the run and call these functions.

Logging policies
----------------
* Params are flattened (``{"model": {"depth": 3}}`` -> ``model.depth``) and stringified.
  A value longer than MLflow's limit (6,000 characters) is truncated with a
  ``...[truncated]`` marker; the full values are kept in the artifact
  ``fraudkit/params_full.json`` and the keys listed in the tag
  ``fraudkit.truncated_params``.
* Metrics must be real numbers (bools count as 0/1). NaN and infinities are not logged
  as metric values, because backends disagree on them (the REST API cannot encode
  infinity); their keys and values go to the tag ``fraudkit.nonfinite_metrics`` and a
  warning is issued.
* Everything goes through ``MlflowClient.log_batch`` in chunks within MLflow's limits.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from fraudkit.core.exceptions import TrackingError
from fraudkit.core.tags import (
    NONFINITE_METRICS_TAG,
    SUMMARY_TAG_PREFIX,
    TRUNCATED_PARAMS_TAG,
)
from fraudkit.tracking.store import retrying, store_error

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.data.dataset import Dataset

__all__ = [
    "TRUNCATION_MARKER",
    "log_batch",
    "log_metrics",
    "log_params",
    "log_summary",
    "set_tags",
]

T = TypeVar("T")

TRUNCATION_MARKER = "...[truncated]"


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` to ``run_id`` (nested mappings flattened with dots) in batches.

    Values are stringified; one longer than MLflow's limit is truncated (see the module
    docstring).
    """
    flat = {str(k): "None" if v is None else str(v) for k, v in _flatten(params).items()}
    truncated = {k: v for k, v in flat.items() if len(v) > MAX_PARAM_VAL_LENGTH}
    cut = MAX_PARAM_VAL_LENGTH - len(TRUNCATION_MARKER)
    for key in truncated:
        flat[key] = flat[key][:cut] + TRUNCATION_MARKER
    log_batch(client, run_id, params=[Param(k, v) for k, v in flat.items()])
    if truncated:
        client.log_dict(run_id, truncated, "fraudkit/params_full.json")
        set_tags(client, run_id, {TRUNCATED_PARAMS_TAG: ",".join(sorted(truncated))})


def log_metrics(
    client: MlflowClient,
    run_id: str,
    metrics: Mapping[str, Any],
    step: int | None = None,
    *,
    model_id: str | None = None,
    dataset: Dataset | None = None,
) -> None:
    """Log numeric ``metrics`` to ``run_id`` at ``step`` in batches.

    Non-finite values are not logged as metrics but recorded in a tag, with a warning.
    With ``model_id`` (an MLflow 3 logged model's id) the metrics are also the model's
    metrics; with ``dataset`` (anything with a ``name`` and a ``digest``) each metric
    names the data it was measured on.

    Raises
    ------
    TrackingError
        A value is not a number.
    """
    now = int(time.time() * 1000)
    values = {str(k): _as_metric_value(str(k), v) for k, v in _flatten(metrics).items()}
    nonfinite = {k: v for k, v in values.items() if not math.isfinite(v)}
    link = {
        "model_id": model_id,
        "dataset_name": dataset.name if dataset is not None else None,
        "dataset_digest": dataset.digest if dataset is not None else None,
    }
    finite = [Metric(k, v, now, step or 0, **link) for k, v in values.items() if k not in nonfinite]
    log_batch(client, run_id, metrics=finite)
    if nonfinite:
        text = ",".join(f"{k}={v}" for k, v in sorted(nonfinite.items()))
        # Point at the code that called the manager, two frames up.
        warnings.warn(f"not logging non-finite metrics: {text}", stacklevel=3)
        set_tags(client, run_id, {NONFINITE_METRICS_TAG: text})


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set tags of ``run_id`` in batches (values stringified, cut to MLflow's limit)."""
    log_batch(
        client,
        run_id,
        tags=[RunTag(str(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in tags.items()],
    )


def log_summary(client: MlflowClient, run_id: str, summary: Mapping[str, Any]) -> None:
    """Log a results summary: ``summary.json`` plus its scalars as metrics and tags.

    Numbers and bools become metrics (bools as 0/1) under their own key; every scalar
    is also a tag ``fraudkit.summary.<key>`` so the run can be filtered on it.
    """
    text = json.dumps(dict(summary), default=_json_default, indent=2, sort_keys=True)
    client.log_text(run_id, text, "summary.json")
    scalars = {
        k: _scalar(v) for k, v in _flatten(summary).items() if not isinstance(v, list | tuple)
    }
    numbers = {k: v for k, v in scalars.items() if isinstance(v, bool | int | float)}
    set_tags(client, run_id, {f"{SUMMARY_TAG_PREFIX}{k}": v for k, v in scalars.items()})
    if numbers:
        log_metrics(client, run_id, numbers)


def log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    metrics: list[Metric] | None = None,
    params: list[Param] | None = None,
    tags: list[RunTag] | None = None,
) -> None:
    """Send metrics, params and tags to ``run_id`` in as few ``log_batch`` calls as fit.

    Raises
    ------
    FraudkitError
        The store refused them (see :func:`fraudkit.tracking.store.store_error`).
    """
    metrics, params, tags = metrics or [], params or [], tags or []
    requests = [
        *({"metrics": chunk} for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH)),
        *({"params": chunk} for chunk in _chunks(params, MAX_PARAMS_TAGS_PER_BATCH)),
        *({"tags": chunk} for chunk in _chunks(tags, MAX_PARAMS_TAGS_PER_BATCH)),
    ]
    if len(metrics) + len(params) + len(tags) <= MAX_PARAMS_TAGS_PER_BATCH:
        requests = [{"metrics": metrics, "params": params, "tags": tags}]
    for request in requests:
        try:
            retrying(lambda r=request: client.log_batch(run_id, **r))
        except MlflowException as exc:
            raise store_error(exc, client.tracking_uri, what=f"logging to run {run_id}") from exc


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _as_metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrackingError(
            f"metric {key!r} has non-numeric value {value!r}; log text with log_params or "
            "log_experiment_summary instead"
        ) from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _scalar(value: Any) -> Any:
    # numpy scalars (np.float64, np.bool_) behave like their Python counterparts once unwrapped.
    return value.item() if getattr(value, "ndim", None) == 0 else value
