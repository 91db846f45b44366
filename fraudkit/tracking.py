"""The MLflow manager: experiments, typed runs, batched logging and model logging.

``mlflow_manager`` is the module-level default most code uses::

    from fraudkit import mlflow_manager

    with mlflow_manager.start_training_run("fraud_detection_v2"):
        mlflow_manager.log_params({"model_type": "hist_gradient_boosting"})
        mlflow_manager.log_metrics({"average_precision": 0.81})

Run starters behave like :func:`mlflow.start_run`: the run starts when the starter is
called, so a notebook can start it in one cell and end it in a later one with
:meth:`MlflowManager.end_run`; used as a context manager the run ends ``FINISHED`` on
normal exit and ``FAILED`` when the block raises (the exception propagates).

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

import contextlib
import functools
import json
import math
import os
import re
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from fraudkit import config, registry
from fraudkit.config import DEFAULT_MODEL_NAME, TAG_PREFIX, ExperimentType
from fraudkit.exceptions import ConfigurationError, FraudkitError, RegistryError, TrackingError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from mlflow.data.dataset import Dataset
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking.fluent import ActiveRun
    from numpy.typing import ArrayLike

T = TypeVar("T")

TRUNCATION_MARKER = "...[truncated]"
_RETRYABLE = (
    "database is locked",
    "already exists",
    "unique constraint",
    "duplicate key",
    "duplicate column",
)
# Rows MLflow's schema inference sees when a dataset is logged (see log_dataset).
_SCHEMA_SAMPLE_ROWS = 1_000
# The monitoring reference: transactions (readable alone with load_frame) and the model's
# scores on them, in a second frame of one column.
REFERENCE_FRAME = "reference"
REFERENCE_SCORES = "reference_scores"
SCORE_COLUMN = "score"


def _retrying(action: Callable[[], T], *, attempts: int = 8, first_delay: float = 0.05) -> T:
    """Run ``action``, retrying with backoff on SQLite lock and create-race errors.

    Two processes initialising one fresh SQLite store, or creating the same experiment,
    collide; MLflow's busy timeout does not cover schema creation, so we retry a few times.
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            text = str(exc).lower()
            if attempt == attempts - 1 or not any(marker in text for marker in _RETRYABLE):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _schema_lock(uri: str) -> Iterator[None]:
    """Serialise first opening of a local SQLite store across processes.

    MLflow creates and migrates the schema when a store is first opened; two processes
    doing that at once on a fresh file fail (alembic sees the other's half-done migration),
    and a busy timeout does not help. A file lock next to the database makes them queue.
    """
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        yield
        return
    import fcntl

    database = Path(uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _label(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]+", "_", str(text)).strip("_")
    return cleaned[:80] or "run"


@functools.cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=config.notebooks_dir().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


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


def _pip_requirements() -> list[str]:
    # Explicit pins skip MLflow's requirement inference, which costs ~10 s per model.
    from importlib.metadata import version

    return [
        f"{dist}=={version(dist)}" for dist in ("scikit-learn", "skops", "numpy", "pandas", "scipy")
    ]


# fraudkit models are built from scikit-learn, numpy and scipy objects. Any other type in a
# model (a custom function, os.system) would have to be trusted by skops, and would then
# run wherever the model is loaded, so such a model is refused rather than logged.
TRUSTED_TYPE_MODULES = ("sklearn.", "numpy.", "scipy.")


def _skops_trusted_types(model: Any) -> list[str]:
    """The types skops must trust to load ``model``; TrackingError for a model not to log."""
    import skops.io
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError) as exc:
        raise TrackingError(
            f"model of type {type(model).__name__} is not a fitted scikit-learn estimator "
            f"({exc}); fit it (fraudkit.models.train_model) before logging it"
        ) from None
    found = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    foreign = [name for name in found if not name.startswith(TRUSTED_TYPE_MODULES)]
    if foreign:
        raise TrackingError(
            f"refusing to log a model holding {', '.join(foreign)}: only scikit-learn, numpy "
            "and scipy types are trusted when it is loaded; build it from scikit-learn parts "
            "(fraudkit.models.build_model)"
        )
    return found


def _feature_signature(model: Any, input_example: Any) -> Any:
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    if input_example is not None:
        return infer_signature(input_example, model.predict_proba(input_example))
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise TrackingError(
            "cannot infer a model signature: pass input_example= (a few feature rows) or "
            "signature= to log_model_with_metadata"
        )
    columns = [ColSpec("double", str(n)) for n in names if str(n) != "Class"]
    return ModelSignature(inputs=Schema(columns))


def _dataset_record(df: pd.DataFrame, name: str) -> PandasDataset:
    """MLflow's record of ``df`` under ``name``, identified by fraudkit's data fingerprint."""
    from mlflow.data import from_pandas

    from fraudkit.data import LABEL_COLUMN, data_fingerprint

    targets = LABEL_COLUMN if LABEL_COLUMN in df.columns else None
    return from_pandas(df, name=name, targets=targets, digest=data_fingerprint(df))


def _dataset_entity(dataset: PandasDataset) -> DatasetEntity:
    """The record to log as a run input, its schema inferred from a sample of rows."""
    from mlflow.types.utils import _infer_schema

    # MLflow infers the schema value by value (6.5 s for 120k x 31); the column types
    # decide it, so a head sample gives the same schema in 0.07 s. Priming the cached
    # property keeps the rest of MLflow's dataset record (profile, digest) on all rows.
    # Its hint about integer columns concerns model signatures, not dataset records.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset.__dict__["schema"] = _infer_schema(dataset.df.head(_SCHEMA_SAMPLE_ROWS))
    return dataset._to_mlflow_entity()


class MlflowManager:
    """Experiment setup, typed runs, batched logging and model registration.

    Parameters
    ----------
    tracking_uri : str, optional
        The tracking store. Default: resolved at each use by
        :func:`fraudkit.config.tracking_uri` (``MLFLOW_TRACKING_URI`` or the kit's SQLite
        store under ``FRAUDKIT_HOME``).

    Notes
    -----
    Creating a manager touches nothing; the store is opened on first use.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._explicit_uri = tracking_uri
        self._clients: dict[str, MlflowClient] = {}
        self._experiment_ids: dict[tuple[str, str], str] = {}

    # -- store ---------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        """The tracking URI in effect now."""
        return self._explicit_uri or config.tracking_uri()

    @property
    def client(self) -> MlflowClient:
        """An :class:`mlflow.MlflowClient` on :attr:`tracking_uri`."""
        uri = self.tracking_uri
        if uri not in self._clients:
            from sqlalchemy.exc import SQLAlchemyError

            if config.is_remote(uri):
                config.apply_http_defaults()
            # Opening a database store can also fail outside MLflow's own errors: a missing
            # driver (ImportError), a refused connection (SQLAlchemyError), an unusable folder.
            try:
                with _schema_lock(uri):
                    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                    client.search_experiments(max_results=1)  # creates/migrates the schema now
            except (MlflowException, SQLAlchemyError, ImportError, OSError) as exc:
                raise _store_error(exc, uri) from exc
            self._clients[uri] = client
        return self._clients[uri]

    def _activate(self) -> None:
        # The fluent API (mlflow.start_run, mlflow.sklearn.log_model) follows the global
        # URI; point it at our store so both APIs write to the same place.
        uri = self.tracking_uri
        if mlflow.get_tracking_uri() != uri:
            mlflow.set_tracking_uri(uri)
        if mlflow.get_registry_uri() != uri:
            mlflow.set_registry_uri(uri)

    # -- experiments ---------------------------------------------------------------------

    def setup_experiments(self) -> dict[str, str]:
        """Create (or restore) the five experiments and return ``{type: experiment_id}``.

        Idempotent and safe to call from several processes at once.
        """
        return {t.value: self.experiment_id(t) for t in ExperimentType}

    def experiment_id(self, experiment_type: str | ExperimentType) -> str:
        """Return the id of the experiment for ``experiment_type``, creating it if needed.

        An experiment found in the deleted state is restored, not duplicated.
        """
        kind = ExperimentType.parse(experiment_type)
        key = (self.tracking_uri, kind.value)
        if key not in self._experiment_ids:
            self._experiment_ids[key] = _retrying(lambda: self._get_or_create(kind))
        return self._experiment_ids[key]

    def _get_or_create(self, kind: ExperimentType) -> str:
        client = self.client
        try:
            experiment = client.get_experiment_by_name(kind.experiment_name)
            if experiment is None:
                return client.create_experiment(
                    kind.experiment_name,
                    artifact_location=config.artifact_root(self.tracking_uri),
                    tags={f"{TAG_PREFIX}experiment_type": kind.value},
                )
        except MlflowException as exc:
            if "already exists" in str(exc).lower():
                raise  # a concurrent creator won; _retrying looks it up again
            raise _store_error(exc, self.tracking_uri) from exc
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        experiment_type: str | ExperimentType,
        label: str | None = None,
        *,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        description: str | None = None,
    ) -> ActiveRun:
        """Start (or resume) a run in the experiment of ``experiment_type``.

        Parameters
        ----------
        experiment_type : str or ExperimentType
            Which of the five experiments the run belongs to.
        label : str, optional
            Middle part of the structured run name ``<type>-<label>-<UTC timestamp>``.
        run_id : str, optional
            Resume this existing run (the notebook runner creates runs and passes their id).
        tags : mapping, optional
            Extra run tags.
        nested : bool
            Start a child run of the active run.
        description : str, optional
            Run description shown in the MLflow UI.

        Returns
        -------
        mlflow.ActiveRun
            Usable as a context manager: ``FINISHED`` on normal exit, ``FAILED`` on error.
        """
        kind = ExperimentType.parse(experiment_type)
        experiment_id = self.experiment_id(kind)
        self._activate()
        self._end_stale_run(run_id, nested)
        all_tags = {**self.run_tags(kind, label), **dict(tags or {})}
        if run_id is not None:
            existing = self.get_run(run_id)
            if existing.info.experiment_id != experiment_id:
                raise TrackingError(
                    f"run {run_id} belongs to experiment {existing.info.experiment_id}, not "
                    f"the {kind.value} experiment {experiment_id}; use the starter that "
                    "matches the run's type"
                )
            active = mlflow.start_run(run_id=run_id, nested=nested)
            # The runner already set the structured name and tags; fill in what is missing.
            missing = {k: v for k, v in all_tags.items() if k not in existing.data.tags}
            self.set_tags(missing)
            return active
        name = self.run_name(kind, label)
        return mlflow.start_run(
            experiment_id=experiment_id,
            run_name=name,
            nested=nested,
            tags={k: str(v) for k, v in all_tags.items()},
            description=description,
        )

    def _end_stale_run(self, run_id: str | None, nested: bool) -> None:
        active = mlflow.active_run()
        if active is None or nested:
            return
        # A notebook cell re-executed in JupyterLab starts a run while the previous one is
        # still active; ending it beats MLflow's "run already active" error.
        status = "FINISHED" if active.info.run_id == run_id else "KILLED"
        if status == "KILLED":
            warnings.warn(
                f"ending still-active run {active.info.run_id} as KILLED before starting a "
                "new one; call mlflow_manager.end_run() when a run is complete",
                stacklevel=3,
            )
        mlflow.end_run(status)

    @staticmethod
    def run_name(experiment_type: str | ExperimentType, label: str | None = None) -> str:
        """Return the structured run name ``<type>-<label>-<UTC timestamp>``."""
        kind = ExperimentType.parse(experiment_type)
        return f"{kind.value}-{_label(label or kind.value)}-{_utc_stamp()}"

    @staticmethod
    def run_tags(experiment_type: str | ExperimentType, label: str | None = None) -> dict:
        """Return the standard tags of a run of ``experiment_type``."""
        kind = ExperimentType.parse(experiment_type)
        tags = {f"{TAG_PREFIX}experiment_type": kind.value}
        if label:
            tags[f"{TAG_PREFIX}label"] = str(label)
        for env, key in (
            (config.ENV_NOTEBOOK, "notebook"),
            (config.ENV_PIPELINE_ID, "pipeline_id"),
        ):
            if os.environ.get(env):
                tags[f"{TAG_PREFIX}{key}"] = os.environ[env]
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags[f"{TAG_PREFIX}git_commit"] = commit
        return tags

    def start_training_run(self, run_name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a run in the training experiment (see :meth:`start_run` for kwargs)."""
        return self.start_run(ExperimentType.TRAINING, run_name, **kwargs)

    def start_ab_test_run(self, model_a: str, model_b: str, **kwargs: Any) -> ActiveRun:
        """Start a run in the A/B testing experiment comparing ``model_a`` with ``model_b``."""
        tags = {f"{TAG_PREFIX}model_a": model_a, f"{TAG_PREFIX}model_b": model_b}
        tags.update(kwargs.pop("tags", None) or {})
        return self.start_run(
            ExperimentType.AB_TESTING, f"{model_a}-vs-{model_b}", tags=tags, **kwargs
        )

    def start_monitoring_run(
        self, model_name: str = "production_model", **kwargs: Any
    ) -> ActiveRun:
        """Start a run in the monitoring experiment watching ``model_name``."""
        tags = {f"{TAG_PREFIX}monitored_model": model_name, **(kwargs.pop("tags", None) or {})}
        return self.start_run(ExperimentType.MONITORING, model_name, tags=tags, **kwargs)

    def start_retraining_run(self, run_name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a run in the retraining experiment."""
        return self.start_run(ExperimentType.RETRAINING, run_name, **kwargs)

    def start_comparison_run(self, run_name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a run in the model-comparison experiment (``nested=True`` for children)."""
        return self.start_run(ExperimentType.MODEL_COMPARISON, run_name, **kwargs)

    def end_run(self, status: str = "FINISHED") -> None:
        """End the active run with ``status`` (FINISHED, FAILED or KILLED)."""
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise ConfigurationError(
                f"unknown run status {status!r}; use FINISHED, FAILED or KILLED"
            )
        mlflow.end_run(status)

    def get_run(self, run_id: str) -> Run:
        """Return the run ``run_id``, or raise TrackingError naming it."""
        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            raise _store_error(exc, self.tracking_uri, what=f"run {run_id!r}") from exc

    def _active_run_id(self, run_id: str | None = None) -> str:
        if run_id is not None:
            return run_id
        active = mlflow.active_run()
        if active is None:
            raise TrackingError(
                "no active run; start one first, e.g. "
                "`with mlflow_manager.start_training_run(): ...`"
            )
        return active.info.run_id

    # -- logging -------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any], *, run_id: str | None = None) -> None:
        """Log ``params`` (nested mappings flattened with dots) in batches."""
        target = self._active_run_id(run_id)
        flat = {str(k): "None" if v is None else str(v) for k, v in _flatten(params).items()}
        truncated = {k: v for k, v in flat.items() if len(v) > MAX_PARAM_VAL_LENGTH}
        cut = MAX_PARAM_VAL_LENGTH - len(TRUNCATION_MARKER)
        for key in truncated:
            flat[key] = flat[key][:cut] + TRUNCATION_MARKER
        self._log_batch(target, params=[Param(k, v) for k, v in flat.items()])
        if truncated:
            self.client.log_dict(target, truncated, "fraudkit/params_full.json")
            self.set_tags(
                {f"{TAG_PREFIX}truncated_params": ",".join(sorted(truncated))}, run_id=target
            )

    def log_metrics(
        self,
        metrics: Mapping[str, Any],
        step: int | None = None,
        *,
        run_id: str | None = None,
        model_id: str | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        """Log numeric ``metrics`` at ``step`` in batches (non-finite values: see module doc).

        With ``model_id`` (an MLflow 3 logged model's id) the metrics are also the model's
        metrics; with ``dataset`` (anything with a ``name`` and a ``digest``, such as an
        ``mlflow.data`` dataset) each metric names the data it was measured on (record the
        data itself with :meth:`log_dataset`).
        """
        target = self._active_run_id(run_id)
        now = int(time.time() * 1000)
        values = {str(k): _as_metric_value(str(k), v) for k, v in _flatten(metrics).items()}
        nonfinite = {k: v for k, v in values.items() if not math.isfinite(v)}
        link = {
            "model_id": model_id,
            "dataset_name": dataset.name if dataset is not None else None,
            "dataset_digest": dataset.digest if dataset is not None else None,
        }
        finite = [
            Metric(k, v, now, step or 0, **link) for k, v in values.items() if k not in nonfinite
        ]
        self._log_batch(target, metrics=finite)
        if nonfinite:
            text = ",".join(f"{k}={v}" for k, v in sorted(nonfinite.items()))
            warnings.warn(f"not logging non-finite metrics: {text}", stacklevel=2)
            self.set_tags({f"{TAG_PREFIX}nonfinite_metrics": text}, run_id=target)

    def set_tags(self, tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
        """Set run tags in batches (values stringified, cut to MLflow's limit)."""
        target = self._active_run_id(run_id)
        self._log_batch(
            target, tags=[RunTag(str(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in tags.items()]
        )

    def _log_batch(
        self,
        run_id: str,
        *,
        metrics: list[Metric] | None = None,
        params: list[Param] | None = None,
        tags: list[RunTag] | None = None,
    ) -> None:
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
                _retrying(lambda r=request: self.client.log_batch(run_id, **r))
            except MlflowException as exc:
                raise _store_error(exc, self.tracking_uri, what=f"logging to run {run_id}") from exc

    def log_artifacts(
        self, artifacts: Mapping[str, str | os.PathLike | Figure], *, run_id: str | None = None
    ) -> None:
        """Log files, directories or matplotlib figures under the given artifact names.

        A file is stored as ``<name>/<file name>``, a directory's content under ``<name>/``
        and a figure as ``<name>.png``.

        Raises
        ------
        TrackingError
            If a path does not exist (nothing is logged in that case).
        """
        target = self._active_run_id(run_id)
        resolved: dict[str, Any] = {}
        for name, value in artifacts.items():
            if hasattr(value, "savefig"):
                resolved[name] = value
                continue
            path = Path(value)
            if not path.exists():
                raise TrackingError(
                    f"artifact {name!r}: path {str(path)!r} does not exist "
                    f"(resolved from {Path.cwd()}); pass an existing file or directory"
                )
            resolved[name] = path
        for name, value in resolved.items():
            if isinstance(value, Path) and value.is_dir():
                self.client.log_artifacts(target, str(value), artifact_path=name)
            elif isinstance(value, Path):
                self.client.log_artifact(target, str(value), artifact_path=name)
            else:
                self.client.log_figure(target, value, f"{name}.png")

    def log_figure(self, figure: Figure, name: str, *, run_id: str | None = None) -> None:
        """Log a matplotlib figure as ``plots/<name>.png``."""
        self.client.log_figure(self._active_run_id(run_id), figure, f"plots/{name}.png")

    def log_dataset(
        self,
        df: pd.DataFrame,
        *,
        name: str,
        context: str = "training",
        run_id: str | None = None,
    ) -> str:
        """Record ``df`` as an input of the run (``mlflow.log_input``) and return its fingerprint.

        The fingerprint is set as tags ``fraudkit.data_fingerprint.<context>`` and, for the
        first dataset of a run, ``fraudkit.data_fingerprint``. A dataset the run already
        records (same name and fingerprint) is not recorded twice.
        """
        return self._log_dataset(df, name, context, self._active_run_id(run_id)).digest

    def _log_dataset(self, df: pd.DataFrame, name: str, context: str, run_id: str) -> Dataset:
        from mlflow.entities import DatasetInput, InputTag

        dataset = _dataset_record(df, name)
        run = self.get_run(run_id)
        inputs = run.inputs.dataset_inputs if run.inputs else []
        recorded = {(i.dataset.name, i.dataset.digest) for i in inputs}
        if (dataset.name, dataset.digest) not in recorded:
            dataset_input = DatasetInput(
                dataset=_dataset_entity(dataset),
                tags=[InputTag(key="mlflow.data.context", value=context)],
            )
            self.client.log_inputs(run_id, datasets=[dataset_input])
        tags = {f"{TAG_PREFIX}data_fingerprint.{context}": dataset.digest}
        if f"{TAG_PREFIX}data_fingerprint" not in run.data.tags:
            tags[f"{TAG_PREFIX}data_fingerprint"] = dataset.digest
        self.set_tags(tags, run_id=run_id)
        return dataset

    def log_frame(self, df: pd.DataFrame, name: str, *, run_id: str | None = None) -> str:
        """Log a DataFrame as the Parquet artifact ``data/<name>.parquet``; return its path."""
        target = self._active_run_id(run_id)
        with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder:
            path = Path(folder) / f"{name}.parquet"
            df.to_parquet(path, index=False)
            self.client.log_artifact(target, str(path), artifact_path="data")
        return f"data/{name}.parquet"

    def load_frame(self, run_id: str, name: str) -> pd.DataFrame:
        """Load a DataFrame logged with :meth:`log_frame` on run ``run_id``.

        Raises
        ------
        TrackingError
            The run has no such artifact.
        """
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix="fraudkit-") as folder:
            try:
                path = self.client.download_artifacts(run_id, f"data/{name}.parquet", folder)
            except (MlflowException, OSError) as exc:
                raise TrackingError(
                    f"run {run_id} has no logged frame {name!r} (artifact data/{name}.parquet); "
                    "log it with mlflow_manager.log_frame(df, name)"
                ) from exc
            return pd.read_parquet(path)

    def log_reference(
        self, frame: pd.DataFrame, scores: ArrayLike, *, run_id: str | None = None
    ) -> str:
        """Keep a monitoring reference with the run: transactions and the model's scores on them.

        Monitoring compares a window's features and scores with this reference, so it must be
        data the model never trained on (validation or test rows), scored by the model that
        is registered from the same run. The frame is the Parquet artifact
        ``data/reference.parquet`` (also readable with :meth:`load_frame`), the scores
        ``data/reference_scores.parquet`` (one column ``score``).

        Parameters
        ----------
        frame : pandas.DataFrame
            Reference transactions.
        scores : array-like of shape (n,)
            The model's fraud scores on ``frame``, row for row.
        run_id : str, optional
            The run to keep it with; default the active run.

        Returns
        -------
        str
            The run id, to pass to :meth:`load_reference`.

        Raises
        ------
        TrackingError
            ``scores`` are not one finite number per row of ``frame`` (nothing is logged).
        """
        import numpy as np
        import pandas as pd

        target = self._active_run_id(run_id)
        try:
            values = np.asarray(scores, dtype=float)
            valid = values.shape == (len(frame),) and bool(np.isfinite(values).all())
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise TrackingError(
                f"reference scores must be one finite number per row of the frame ({len(frame)} "
                "rows); pass fraudkit.models.predict_scores(model, frame)"
            )
        # Scores first: a reference frame found without its scores is then always one logged
        # by an older kit with log_frame, never one whose scores failed to upload.
        self.log_frame(pd.DataFrame({SCORE_COLUMN: values}), REFERENCE_SCORES, run_id=target)
        self.log_frame(frame, REFERENCE_FRAME, run_id=target)
        return target

    def load_reference(self, run_id: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Load the reference kept with :meth:`log_reference`: ``(frame, scores)``.

        Raises
        ------
        TrackingError
            The run holds no reference with scores (or they do not match row for row).
        """
        parts = {}
        for name in (REFERENCE_SCORES, REFERENCE_FRAME):
            try:
                parts[name] = self.load_frame(run_id, name)
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

    def log_experiment_summary(
        self, summary: Mapping[str, Any], *, run_id: str | None = None
    ) -> None:
        """Log a results summary: ``summary.json`` plus its scalars as metrics and tags.

        Numbers and bools become metrics (bools as 0/1) under their own key; every scalar
        is also a tag ``fraudkit.summary.<key>`` so the run can be filtered on it.
        """
        target = self._active_run_id(run_id)
        text = json.dumps(dict(summary), default=_json_default, indent=2, sort_keys=True)
        self.client.log_text(target, text, "summary.json")
        scalars = {
            k: _scalar(v) for k, v in _flatten(summary).items() if not isinstance(v, list | tuple)
        }
        numbers = {k: v for k, v in scalars.items() if isinstance(v, bool | int | float)}
        self.set_tags({f"{TAG_PREFIX}summary.{k}": v for k, v in scalars.items()}, run_id=target)
        if numbers:
            self.log_metrics(numbers, run_id=target)

    # -- models --------------------------------------------------------------------------

    def log_model_with_metadata(
        self,
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
    ) -> ModelVersion:
        """Log a fitted scikit-learn model with its metadata and register a new version.

        The model is stored with skops (trusted types taken from the model itself, which
        may hold scikit-learn, numpy and scipy types only), explicit pip requirements, a
        signature on the feature frame and ``pyfunc_predict_fn="predict_proba"``, so
        ``mlflow.pyfunc.load_model`` on the version returns fraud probabilities. ``stage``
        (``"Staging"``/``"Production"``, any case) sets the matching alias and records the
        move. Without an active run a training run is started for the call and ended
        afterwards.

        With ``evaluation_dataset`` the metrics are the model's own (MLflow 3 logged-model
        metrics) and each names the dataset it was measured on (name and
        :func:`fraudkit.data.data_fingerprint` digest), which the MLflow UI shows on the
        model page; the dataset becomes an input of the run (context ``evaluation``) and
        the version carries the tags ``fraudkit.eval_dataset`` and ``fraudkit.eval_digest``,
        from which :func:`fraudkit.registry.promote_model` compares versions on the same
        data.

        Parameters
        ----------
        model : sklearn estimator
            A fitted classifier with ``predict_proba``.
        model_name : str
            Registered model name.
        metrics, params, artifacts : mapping, optional
            Logged to the run (see :meth:`log_metrics` etc.). Metrics logged without
            ``evaluation_dataset`` are linked to the model by MLflow, with no dataset.
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
        if not hasattr(model, "predict_proba"):
            raise TrackingError(
                f"model of type {type(model).__name__} has no predict_proba; log a fitted "
                "scikit-learn classifier"
            )
        if not isinstance(model_name, str) or not model_name.strip():
            raise RegistryError("model_name must be a non-empty string")
        registry._quote(model_name)  # a name MLflow cannot search could never be read back
        trusted = _skops_trusted_types(model)
        if input_example is not None and hasattr(input_example, "head"):
            input_example = input_example.head(5)
        own_run = mlflow.active_run() is None
        if own_run:
            self.start_training_run(model_name)
        self._activate()
        version = None
        try:
            run_id = self._active_run_id()
            if params:
                self.log_params(params)
            evaluation = None
            if evaluation_dataset is not None:
                evaluation = self._log_dataset(
                    evaluation_dataset, evaluation_dataset_name, "evaluation", run_id
                )
            elif metrics:
                self.log_metrics(metrics)
            if artifacts:
                self.log_artifacts(artifacts)
            info = mlflow.sklearn.log_model(
                sk_model=model,
                name="model",
                pip_requirements=_pip_requirements(),
                signature=signature or _feature_signature(model, input_example),
                input_example=input_example,
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",
                skops_trusted_types=trusted,
                registered_model_name=model_name,
            )
            version = str(info.registered_model_version)
            version_tags = {
                f"{TAG_PREFIX}run_id": run_id,
                registry.MODEL_ID_TAG: info.model_id,
                f"{TAG_PREFIX}model_class": type(model).__name__,
            }
            if evaluation is not None:
                # Logged after the model, to carry its id: log_model links the run's earlier
                # metrics to the new model itself, but without their dataset.
                if metrics:
                    self.log_metrics(metrics, model_id=info.model_id, dataset=evaluation)
                version_tags[registry.EVAL_DATASET_TAG] = evaluation.name
                version_tags[registry.EVAL_DIGEST_TAG] = evaluation.digest
            if params and "model_type" in params:
                version_tags[f"{TAG_PREFIX}model_type"] = str(params["model_type"])
            for key, value in version_tags.items():
                self.client.set_model_version_tag(model_name, version, key, value)
            if alias:
                registry.move_alias(
                    self.client,
                    model_name,
                    alias,
                    version,
                    reason=reason or "log_model_with_metadata",
                )
            result = self.client.get_model_version(model_name, version)
        except BaseException as exc:
            if version is not None:
                registry.discard_version(self.client, model_name, version)
            if own_run:
                mlflow.end_run("FAILED")
            if isinstance(exc, FraudkitError | KeyboardInterrupt):
                raise
            if isinstance(exc, MlflowException):
                raise _store_error(
                    exc, self.tracking_uri, what=f"logging model {model_name!r}"
                ) from exc
            raise
        if own_run:
            mlflow.end_run("FINISHED")
        return result

    # -- registry (delegates to fraudkit.registry) -----------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Registry operations live in fraudkit.registry; expose them as manager methods so
        # the seed's `mlflow_manager.compare_model_versions(...)` works.
        if name in registry.MANAGER_METHODS:
            return functools.partial(getattr(registry, name), self.client)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _store_error(exc: Exception, uri: str, *, what: str = "the tracking store") -> FraudkitError:
    """Translate an MLflow error into a FraudkitError with an actionable message."""
    from fraudkit.exceptions import TrackingUnavailableError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = config.redact_secrets(text, uri)  # MLflow quotes the URLs it requested
    code = getattr(exc, "error_code", "")
    shown = config.redact_uri(uri)
    if "RESOURCE_DOES_NOT_EXIST" in str(code) or "not found" in text.lower():
        return TrackingError(f"{what} not found in {shown}: {text}")
    if any(s in text.lower() for s in ("connection", "max retries", "timed out", "unable to open")):
        return TrackingUnavailableError(
            f"cannot reach the MLflow tracking store {shown} ({text}); start the server or "
            "fix MLFLOW_TRACKING_URI"
        )
    if isinstance(exc, ImportError):
        return ConfigurationError(
            f"the tracking store {shown} needs a database driver that is not installed "
            f"({text}); install it (e.g. pip install psycopg2-binary for a "
            "postgresql+psycopg2:// URI) or fix MLFLOW_TRACKING_URI"
        )
    if isinstance(exc, OSError):
        return ConfigurationError(
            f"cannot open the tracking store {shown} ({text}); point MLFLOW_TRACKING_URI or "
            "FRAUDKIT_HOME at a writable folder"
        )
    return TrackingError(f"{what} failed on {shown}: {text}")


mlflow_manager = MlflowManager()
"""The default manager, on the tracking URI resolved from the environment at each use."""
