"""Models logged with the data they were measured on, and the monitoring reference kept beside.

What a training run keeps so that later runs compare like with like:

* :func:`log_model_with_metadata`: a fitted scikit-learn model stored with skops, explicit
  pip requirements and a signature, registered as a new version whose evaluation metrics
  name the dataset (name and fingerprint) they were measured on;
* :func:`log_dataset`: a DataFrame recorded as a run input (``mlflow.log_input``);
* :func:`log_frame` / :func:`load_frame`: a DataFrame kept as a Parquet artifact;
* :func:`log_reference` / :func:`load_reference`: the monitoring reference, transactions the
  model never trained on and its scores on them;
* :func:`fraudkit.tracking.aliased.load_alias` (its own module) builds on the reference.

The functions taking a ``manager`` are the implementations of the
:class:`~fraudkit.MlflowManager` methods of the same name; call them through the manager
(``mlflow_manager.log_model_with_metadata(...)``).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import mlflow
from mlflow.exceptions import MlflowException

from fraudkit.core import config
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.core.exceptions import FraudkitError, TrackingError
from fraudkit.core.tags import (
    DATA_FINGERPRINT_TAG,
    EVAL_DATASET_TAG,
    EVAL_DIGEST_TAG,
    MLFLOW_DATASET_CONTEXT_TAG,
    MODEL_CLASS_TAG,
    MODEL_ID_TAG,
    MODEL_TYPE_TAG,
    SOURCE_RUN_TAG,
    data_fingerprint_tag,
)
from fraudkit.science.features import FeatureSpec
from fraudkit.science.schema import PRESETS, TransactionSchema
from fraudkit.tracking.batch_logging import log_metrics
from fraudkit.tracking.model_cards import card_evidence, log_model_card
from fraudkit.tracking.model_packaging import (
    check_classifier,
    definitions_metadata,
    definitions_params,
    log_classifier,
    schema_signature,
    served_config,
)
from fraudkit.tracking.registry import discard_version, move_alias
from fraudkit.tracking.store import store_error

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.data.dataset import Dataset
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo
    from numpy.typing import ArrayLike

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "BASE_RATE_METRICS",
    "REFERENCE_FRAME",
    "REFERENCE_SCORES",
    "SCHEMA_SAMPLE_ROWS",
    "SCORE_COLUMN",
    "load_frame",
    "load_reference",
    "log_dataset",
    "log_frame",
    "log_model_with_metadata",
    "log_reference",
]

# Rows MLflow's schema inference sees when a dataset is logged (see log_dataset).
SCHEMA_SAMPLE_ROWS = 1_000
# The monitoring reference: transactions (readable alone with load_frame) and the model's
# scores on them, in a second frame of one column.
REFERENCE_FRAME = "reference"
REFERENCE_SCORES = "reference_scores"
SCORE_COLUMN = "score"
# Metrics of a training run holding the fraud count and size of all its labelled data.
BASE_RATE_METRICS = ("base_rate_frauds", "base_rate_rows")


def _dataset_record(df: pd.DataFrame, name: str) -> PandasDataset:
    """MLflow's record of ``df`` under ``name``, identified by fraudkit's data fingerprint."""
    from mlflow.data.pandas_dataset import from_pandas

    from fraudkit.core.schema import LABEL_COLUMN
    from fraudkit.science.data import data_fingerprint

    targets = LABEL_COLUMN if LABEL_COLUMN in df.columns else None
    return from_pandas(df, name=name, targets=targets, digest=data_fingerprint(df))


def _dataset_entity(dataset: PandasDataset) -> DatasetEntity:
    """The record to log as a run input, its schema inferred from a sample of rows."""
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.models import infer_signature

    # MLflow infers the schema value by value (6.5 s for 120k x 31); the column types
    # decide it, so a head sample gives the same schema in 0.07 s. Priming the cached
    # property keeps the rest of MLflow's dataset record (profile, digest) on all rows.
    # Its hint about integer columns concerns model signatures, not dataset records.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset.__dict__["schema"] = infer_signature(dataset.df.head(SCHEMA_SAMPLE_ROWS)).inputs
    record = dataset.to_dict()
    return DatasetEntity(
        name=record["name"],
        digest=record["digest"],
        source_type=record["source_type"],
        source=record["source"],
        schema=record.get("schema"),
        profile=record.get("profile"),
    )


# -- models ----------------------------------------------------------------------------


def log_model_with_metadata(
    manager: MlflowManager,
    model: Any,
    model_name: str = DEFAULT_MODEL_NAME,
    metrics: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, Any] | None = None,
    stage: str | None = None,
    input_example: Any = None,
    signature: Any = None,
    *,
    evaluation_dataset: pd.DataFrame | None = None,
    evaluation_dataset_name: str = "test",
    reason: str | None = None,
    schema: TransactionSchema | None = None,
    features: FeatureSpec | None = None,
    simulation: Mapping[str, Any] | None = None,
    threshold: float | None = None,
    training_data: pd.DataFrame | None = None,
) -> ModelVersion:
    """Log a fitted scikit-learn model with its metadata and register a new version.

    The model is stored with skops (trusted types taken from the model itself, which
    may hold scikit-learn, numpy and scipy types only), explicit pip requirements, a
    signature on the feature frame (typed from the schema on a declared one). Served
    (``mlflow.pyfunc.load_model``, ``mlflow models serve``), the version answers with
    decisions (:mod:`fraudkit.tracking.served`): the fraud probability, the alert at
    ``threshold``, the version and the reasons. ``stage``
    (``"Staging"``/``"Production"``, any case) sets the matching alias and records the
    move. Without an active run a training run is started for the call and ended
    afterwards.

    With ``evaluation_dataset`` the metrics are the model's own (MLflow 3 logged-model
    metrics) and each names the dataset it was measured on (name and
    :func:`fraudkit.science.data.data_fingerprint` digest), which the MLflow UI shows on the
    model page; the dataset becomes an input of the run (context ``evaluation``) and
    the version carries the tags ``fraudkit.eval_dataset`` and ``fraudkit.eval_digest``,
    from which :func:`fraudkit.tracking.promotion.promote_model` compares versions on the same
    data.

    Every version carries a model card (:mod:`fraudkit.tracking.model_cards`):
    ``model_card.md``, its HTML and the facts behind them, logged to the run under
    ``model_card/v<version>/``, measured on ``evaluation_dataset`` and ``training_data``
    when given; ``fraudkit card`` reads it back.

    Parameters
    ----------
    manager : MlflowManager
        The manager whose store and active run to use.
    model : sklearn estimator
        A fitted classifier with ``predict_proba``.
    model_name : str
        Registered model name.
    metrics, params, artifacts : mapping, optional
        Logged to the run (see :meth:`~fraudkit.MlflowManager.log_metrics` etc.). Metrics
        logged without ``evaluation_dataset`` are linked to the model by MLflow, with no
        dataset.
    stage : str, optional
        ``"Staging"`` or ``"Production"``; None registers without an alias.
    input_example : DataFrame, optional
        A few feature rows; also used to infer the signature.
    signature : mlflow.models.ModelSignature, optional
        Overrides the inferred signature.
    evaluation_dataset : pandas.DataFrame, optional
        The labelled transactions ``metrics`` were measured on (the test period).
    evaluation_dataset_name : str
        Its name in MLflow (default ``"test"``).
    reason : str, optional
        Recorded with the alias move.
    schema : TransactionSchema, optional
        The schema the model was trained on, when not Kaggle's. It travels with the model
        (its ``MLmodel`` metadata, read back by
        :func:`~fraudkit.tracking.aliased.load_alias`) with ``features``, types the
        signature, and is logged as the run artifacts
        ``definitions/schema.yaml`` and ``definitions/features.yaml`` and as params
        ``features.*``.
    features : FeatureSpec, optional
        With ``schema``, the behavioural features the model reads (default
        :class:`~fraudkit.science.features.FeatureSpec` on the schema's entities).
    simulation : mapping, optional
        With ``schema``, the simulated world the model was trained on
        (:class:`~fraudkit.science.entities.HandbookWorld`), kept in its metadata so
        that monitoring watches the same world.
    threshold : float, optional
        The operating threshold the served model alerts at; default ``metrics["threshold"]``
        (what :func:`fraudkit.science.metrics.evaluate` records), else 0.5.
    training_data : pandas.DataFrame, optional
        The transactions the model was trained on: a logistic model's reasons are
        deviations from their mean, and it is served without reasons when they are not
        given. The tree models do not need them.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
        The new version (with its aliases).

    Raises
    ------
    ConfigurationError
        Unknown ``stage`` (checked before anything is logged).
    TrackingError
        The model is unfitted or holds types other than scikit-learn, numpy and scipy
        ones, or ``evaluation_dataset`` is not a DataFrame (all checked before anything
        is logged), or it cannot be logged or registered; no version is left behind.
    """
    alias = config.stage_to_alias(stage) if stage is not None else None
    if evaluation_dataset is not None and not hasattr(evaluation_dataset, "columns"):
        raise TrackingError(
            f"evaluation_dataset is a {type(evaluation_dataset).__name__}; pass the "
            "labelled transactions (a pandas DataFrame) the metrics were measured on"
        )
    trusted = check_classifier(model, model_name)
    if input_example is not None and hasattr(input_example, "head"):
        input_example = input_example.head(5)
    own, spec = None, None
    if schema is not None and schema != PRESETS["kaggle"]:
        own, spec = schema, (features or FeatureSpec()).for_schema(schema)
        if signature is None and input_example is None:
            raise TrackingError(
                "a model on a declared schema needs input_example= (a few rows of its "
                "input columns) to type its outputs"
            )
        signature = signature or schema_signature(model, own, spec, input_example)
    threshold, threshold_source = _served_threshold(threshold, metrics)
    served = served_config(model, model_name, threshold, training_data)
    # Measured before anything is logged, so a model the card cannot read leaves nothing.
    card = _CardInputs(
        card_evidence(
            model,
            schema=own,
            evaluation=evaluation_dataset,
            evaluation_name=evaluation_dataset_name,
            training=training_data,
        ),
        served["threshold"],
        threshold_source,
    )
    with _model_run(manager, model_name) as run_id:
        if own is not None and spec is not None:
            _log_definitions(manager, own, spec)
        evaluation = _log_run_inputs(
            manager,
            run_id,
            metrics=metrics,
            params=params,
            artifacts=artifacts,
            evaluation_dataset=evaluation_dataset,
            evaluation_dataset_name=evaluation_dataset_name,
        )
        info = log_classifier(
            model,
            model_name,
            input_example=input_example,
            signature=signature,
            trusted_types=trusted,
            model_config=served,
            metadata=definitions_metadata(own, spec, simulation),
        )
        return _complete_version(
            manager,
            model,
            model_name,
            info,
            run_id=run_id,
            metrics=metrics,
            params=params,
            evaluation=evaluation,
            alias=alias,
            reason=reason,
            card=card,
        )


def _served_threshold(
    threshold: float | None, metrics: Mapping[str, Any] | None
) -> tuple[float | None, str]:
    """The threshold to serve at and where it came from (what the model card says)."""
    if threshold is not None:
        return threshold, "threshold="
    if metrics and metrics.get("threshold") is not None:
        return float(metrics["threshold"]), "metrics['threshold']"
    return None, "the default"


class _CardInputs(NamedTuple):
    """What a version's model card needs from the call that registers it."""

    evidence: tuple[dict[str, Any], str | None]
    threshold: float
    source: str


def _log_definitions(manager: MlflowManager, schema: TransactionSchema, spec: FeatureSpec) -> None:
    """The schema and feature definitions as params and as YAML artifacts of the run."""
    import yaml

    manager.log_params(definitions_params(schema, spec))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "schema.yaml").write_text(schema.to_yaml())
        (Path(folder) / "features.yaml").write_text(yaml.safe_dump(spec.to_dict()))
        manager.log_artifacts({"definitions": folder})


@contextmanager
def _model_run(manager: MlflowManager, model_name: str) -> Iterator[str]:
    """Yield the id of the run to log ``model_name`` to, started for the call if none is active.

    A run started here ends FINISHED, or FAILED when the block raises; MLflow's errors come
    out as the kit's (:func:`fraudkit.tracking.store.store_error`).
    """
    own_run = mlflow.active_run() is None
    if own_run:
        manager.start_training_run(model_name)
    manager.activate()
    try:
        yield manager.active_run_id()
    except BaseException as exc:
        if own_run:
            mlflow.end_run("FAILED")
        if isinstance(exc, FraudkitError | KeyboardInterrupt):
            raise
        if isinstance(exc, MlflowException):
            raise store_error(
                exc, manager.tracking_uri, what=f"logging model {model_name!r}"
            ) from exc
        raise
    if own_run:
        mlflow.end_run("FINISHED")


def _log_run_inputs(
    manager: MlflowManager,
    run_id: str,
    *,
    metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    artifacts: Mapping[str, Any] | None,
    evaluation_dataset: pd.DataFrame | None,
    evaluation_dataset_name: str,
) -> Dataset | None:
    """Log what the run holds before the model; return the evaluation dataset's record.

    Metrics measured on an evaluation dataset wait for the model (see
    :func:`_complete_version`); the others are logged here, and MLflow links them to the
    model it logs next.
    """
    if params:
        manager.log_params(params)
    evaluation = None
    if evaluation_dataset is not None:
        evaluation = log_dataset(
            manager,
            evaluation_dataset,
            name=evaluation_dataset_name,
            context="evaluation",
            run_id=run_id,
        )
    elif metrics:
        manager.log_metrics(metrics)
    if artifacts:
        manager.log_artifacts(artifacts)
    return evaluation


def _complete_version(
    manager: MlflowManager,
    model: Any,
    model_name: str,
    info: ModelInfo,
    *,
    run_id: str,
    metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    evaluation: Dataset | None,
    alias: str | None,
    reason: str | None,
    card: _CardInputs,
) -> ModelVersion:
    """Link the metrics, tag the new version, move the alias and log its model card; on
    failure discard the version."""
    version = str(info.registered_model_version)
    try:
        version_tags = {
            SOURCE_RUN_TAG: run_id,
            MODEL_ID_TAG: info.model_id,
            MODEL_CLASS_TAG: type(model).__name__,
        }
        if evaluation is not None:
            # Logged after the model, to carry its id: log_model links the run's earlier
            # metrics to the new model itself, but without their dataset.
            if metrics:
                manager.log_metrics(metrics, model_id=info.model_id, dataset=evaluation)
            version_tags[EVAL_DATASET_TAG] = evaluation.name
            version_tags[EVAL_DIGEST_TAG] = evaluation.digest
        if params and "model_type" in params:
            version_tags[MODEL_TYPE_TAG] = str(params["model_type"])
        for key, value in version_tags.items():
            manager.client.set_model_version_tag(model_name, version, key, value)
        if alias:
            move_alias(
                manager.client,
                model_name,
                alias,
                version,
                reason=reason or "log_model_with_metadata",
            )
        mv = manager.client.get_model_version(model_name, version)
        log_model_card(manager.client, mv, run_id, card.evidence, (card.threshold, card.source))
        return manager.client.get_model_version(model_name, version)
    except BaseException:
        # No version is left behind by a failed call; the caller ends its run.
        discard_version(manager.client, model_name, version)
        raise


# -- datasets and frames ---------------------------------------------------------------


def log_dataset(
    manager: MlflowManager,
    df: pd.DataFrame,
    *,
    name: str,
    context: str = "training",
    run_id: str | None = None,
) -> Dataset:
    """Record ``df`` as an input of the run (``mlflow.log_input``) and return MLflow's record.

    The record's digest is :func:`fraudkit.science.data.data_fingerprint`. It is set as tags
    ``fraudkit.data_fingerprint.<context>`` and, for the first dataset of a run,
    ``fraudkit.data_fingerprint``. A dataset the run already records (same name and
    fingerprint) is not recorded twice.

    Parameters
    ----------
    manager : MlflowManager
        The manager whose store and active run to use.
    df : pandas.DataFrame
        The transactions.
    name : str
        The dataset's name in MLflow.
    context : str
        What the run used it for (``training``, ``evaluation``, ...).
    run_id : str, optional
        Default the active run.

    Returns
    -------
    mlflow.data.pandas_dataset.PandasDataset
        Its ``name`` and ``digest`` can link metrics to it.
    """
    from mlflow.entities import DatasetInput, InputTag

    target = manager.active_run_id(run_id)
    dataset = _dataset_record(df, name)
    run = manager.get_run(target)
    inputs = run.inputs.dataset_inputs if run.inputs else []
    recorded = {(i.dataset.name, i.dataset.digest) for i in inputs}
    if (dataset.name, dataset.digest) not in recorded:
        dataset_input = DatasetInput(
            dataset=_dataset_entity(dataset),
            tags=[InputTag(key=MLFLOW_DATASET_CONTEXT_TAG, value=context)],
        )
        manager.client.log_inputs(target, datasets=[dataset_input])
    tags = {data_fingerprint_tag(context): dataset.digest}
    if DATA_FINGERPRINT_TAG not in run.data.tags:
        tags[DATA_FINGERPRINT_TAG] = dataset.digest
    manager.set_tags(tags, run_id=target)
    return dataset


def log_frame(client: MlflowClient, run_id: str, df: pd.DataFrame, name: str) -> str:
    """Log ``df`` as the Parquet artifact ``data/<name>.parquet`` of ``run_id``; return its path."""
    with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder:
        path = Path(folder) / f"{name}.parquet"
        df.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), artifact_path="data")
    return f"data/{name}.parquet"


def load_frame(client: MlflowClient, run_id: str, name: str) -> pd.DataFrame:
    """Load a DataFrame logged with :func:`log_frame` on run ``run_id``.

    Raises
    ------
    TrackingError
        The run has no such artifact.
    """
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder:
        try:
            path = client.download_artifacts(run_id, f"data/{name}.parquet", folder)
        except (MlflowException, OSError) as exc:
            raise TrackingError(
                f"run {run_id} has no logged frame {name!r} (artifact data/{name}.parquet); "
                "log it with mlflow_manager.log_frame(df, name)"
            ) from exc
        return pd.read_parquet(path)


# -- the monitoring reference ----------------------------------------------------------


def log_reference(
    client: MlflowClient,
    run_id: str,
    frame: pd.DataFrame,
    scores: ArrayLike,
    *,
    base_rate: tuple[int, int] | None = None,
) -> str:
    """Keep a monitoring reference with the run: transactions and the model's scores on them.

    Monitoring compares a window's features and scores with this reference, so it must be
    data the model never trained on (validation or test rows), scored by the model that
    is registered from the same run. The frame is the Parquet artifact
    ``data/reference.parquet`` (also readable with :func:`load_frame`), the scores
    ``data/reference_scores.parquet`` (one column ``score``).

    Parameters
    ----------
    client : MlflowClient
    run_id : str
        The run to keep it with.
    frame : pandas.DataFrame
        Reference transactions.
    scores : array-like of shape (n,)
        The model's fraud scores on ``frame``, row for row.
    base_rate : tuple of (int, int), optional
        ``(frauds, rows)`` of all the labelled data the model was trained and tested on
        (``DataSplit.base_rate``), logged as the metrics :data:`BASE_RATE_METRICS`:
        monitoring weighs the reference to that fraud rate
        (:attr:`fraudkit.tracking.aliased.AliasedModel.base_rate`).

    Returns
    -------
    str
        The run id, to pass to :func:`load_reference`.

    Raises
    ------
    TrackingError
        ``scores`` are not one finite number per row of ``frame`` (nothing is logged).
    """
    import numpy as np
    import pandas as pd

    try:
        values = np.asarray(scores, dtype=float)
        valid = values.shape == (len(frame),) and bool(np.isfinite(values).all())
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise TrackingError(
            f"reference scores must be one finite number per row of the frame ({len(frame)} "
            "rows); pass fraudkit.science.models.predict_scores(model, frame)"
        )
    # Scores first: a reference frame found without its scores is then always one logged
    # by an older kit with log_frame, never one whose scores failed to upload.
    log_frame(client, run_id, pd.DataFrame({SCORE_COLUMN: values}), REFERENCE_SCORES)
    log_frame(client, run_id, frame, REFERENCE_FRAME)
    if base_rate is not None:
        frauds, rows = (int(v) for v in base_rate)
        log_metrics(client, run_id, dict(zip(BASE_RATE_METRICS, (frauds, rows), strict=True)))
    return run_id


def load_reference(client: MlflowClient, run_id: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Load the reference kept with :func:`log_reference`: ``(frame, scores)``.

    Raises
    ------
    TrackingError
        The run holds no reference with scores (or they do not match row for row).
    """
    parts = {}
    for name in (REFERENCE_SCORES, REFERENCE_FRAME):
        try:
            parts[name] = load_frame(client, run_id, name)
        except TrackingError as exc:
            raise TrackingError(
                f"run {run_id} holds no monitoring reference with scores (no artifact "
                f"data/{name}.parquet); keep one in the training run with "
                "mlflow_manager.log_reference(frame, predict_scores(model, frame)) on rows "
                "the model never trained on"
            ) from exc
    scores, frame = parts[REFERENCE_SCORES], parts[REFERENCE_FRAME]
    if SCORE_COLUMN not in scores.columns or len(scores) != len(frame):
        raise TrackingError(
            f"run {run_id}: reference scores ({len(scores)} rows) do not match the "
            f"reference frame ({len(frame)} rows); log both again with "
            "mlflow_manager.log_reference(frame, scores)"
        )
    return frame, scores[SCORE_COLUMN].to_numpy(dtype=float)
