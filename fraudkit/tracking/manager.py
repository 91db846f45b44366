"""The MLflow manager: experiments, typed runs, batched logging, models and the registry.

``mlflow_manager`` is the module-level default most code uses::

    from fraudkit import mlflow_manager

    with mlflow_manager.start_training_run("fraud_detection_v2"):
        mlflow_manager.log_params({"model_type": "hist_gradient_boosting"})
        mlflow_manager.log_metrics({"average_precision": 0.81})

Run starters behave like :func:`mlflow.start_run`: the run starts when the starter is
called, so a notebook can start it in one cell and end it in a later one with
:meth:`MlflowManager.end_run`; used as a context manager the run ends ``FINISHED`` on
normal exit and ``FAILED`` when the block raises (the exception propagates).

The manager is the one object notebooks hold. Runs and experiments are its own; the rest
it delegates, one method to one function, to the module that owns the job:
:mod:`fraudkit.tracking.batch_logging` (params, metrics and tags and their policies),
:mod:`fraudkit.tracking.model_logging` (models, datasets, the monitoring reference),
:mod:`fraudkit.tracking.registry` (aliases, rollback), :mod:`fraudkit.tracking.promotion`
(gates) and :mod:`fraudkit.tracking.history` (comparison, history, degradation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mlflow
from mlflow.exceptions import MlflowException

from fraudkit.core import config
from fraudkit.core.config import DEFAULT_MODEL_NAME, ExperimentType
from fraudkit.core.exceptions import ConfigurationError, TrackingError
from fraudkit.core.tags import (
    EXPERIMENT_KIND_TAG,
    EXPERIMENT_TYPE_TAG,
    ML_EXPERIMENT_KIND,
    MODEL_A_TAG,
    MODEL_B_TAG,
    MONITORED_MODEL_TAG,
)
from fraudkit.tracking import (
    batch_logging,
    history,
    model_logging,
    promotion,
    registry,
    run_naming,
)
from fraudkit.tracking.store import latest_finished_run, open_client, retrying, store_error

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from mlflow import MlflowClient
    from mlflow.data.dataset import Dataset
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking.fluent import ActiveRun
    from numpy.typing import ArrayLike

    from fraudkit.science.features import FeatureSpec
    from fraudkit.science.schema import TransactionSchema
    from fraudkit.tracking.history import DegradationResult

# latest_finished_run lives in fraudkit.tracking.store; it is kept here, where notebooks import it.
__all__ = ["MlflowManager", "latest_finished_run", "mlflow_manager", "resolve_manager"]


class MlflowManager:
    """Experiment setup, typed runs, batched logging and model registration.

    Parameters
    ----------
    tracking_uri : str, optional
        The tracking store. Default: resolved at each use by
        :func:`fraudkit.core.config.tracking_uri` (``MLFLOW_TRACKING_URI`` or the kit's SQLite
        store under ``FRAUDKIT_HOME``).

    Notes
    -----
    Creating a manager touches nothing. On its first use of a store (the first run started
    or experiment looked up there) it creates all five experiments; opening the store
    alone (:attr:`client`, as the dashboard reads) creates none.
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
            self._clients[uri] = open_client(uri)
        return self._clients[uri]

    def activate(self) -> None:
        """Point MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_*``) at this store."""
        # The fluent API (mlflow.start_run, mlflow.sklearn.log_model) follows the global
        # URI; point it at our store so both APIs write to the same place.
        uri = self.tracking_uri
        if mlflow.get_tracking_uri() != uri:
            mlflow.set_tracking_uri(uri)
        if mlflow.get_registry_uri() != uri:
            mlflow.set_registry_uri(uri)

    def reset(self) -> None:
        """Forget cached clients and experiment ids, end active runs, unset MLflow's URIs.

        The manager then behaves as new: the next use opens the store again (and recreates
        experiments deleted meanwhile). Tests call it between cases; a notebook can call it
        after changing ``MLFLOW_TRACKING_URI``.
        """
        while mlflow.active_run() is not None:
            mlflow.end_run()
        # None restores MLflow's default URIs, though its type hints ask for a string.
        mlflow.set_tracking_uri(None)  # pyright: ignore[reportArgumentType]
        mlflow.set_registry_uri(None)  # pyright: ignore[reportArgumentType]
        self._clients.clear()
        self._experiment_ids.clear()

    # -- experiments ---------------------------------------------------------------------

    def setup_experiments(self) -> dict[str, str]:
        """Create (or restore) the five experiments and return ``{type: experiment_id}``.

        Idempotent and safe to call from several processes at once.
        """
        return {t.value: self.experiment_id(t) for t in ExperimentType}

    def experiment_id(self, experiment_type: str | ExperimentType) -> str:
        """Return the id of the experiment for ``experiment_type``, creating it if needed.

        The first lookup on a store creates (or restores) all five experiments, as the
        seed's manager does on initialisation. An experiment found in the deleted state is
        restored, not duplicated. Each carries the tag ``mlflow.experimentKind`` =
        ``custom_model_development`` (see :mod:`fraudkit.tracking.ui`), set when it is created or
        first found without one.
        """
        kind = ExperimentType.parse(experiment_type)
        uri = self.tracking_uri
        if (uri, kind.value) not in self._experiment_ids:
            for each in ExperimentType:
                if (uri, each.value) not in self._experiment_ids:
                    found = retrying(lambda each=each: self._get_or_create(each))
                    self._experiment_ids[(uri, each.value)] = found
        return self._experiment_ids[(uri, kind.value)]

    def _get_or_create(self, kind: ExperimentType) -> str:
        client = self.client
        try:
            experiment = client.get_experiment_by_name(kind.experiment_name)
            if experiment is None:
                return client.create_experiment(
                    kind.experiment_name,
                    artifact_location=config.artifact_root(self.tracking_uri),
                    tags={
                        EXPERIMENT_TYPE_TAG: kind.value,
                        EXPERIMENT_KIND_TAG: ML_EXPERIMENT_KIND,
                    },
                )
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            # Experiments made before the kit tagged them (or by hand) get the kind now; a
            # kind someone chose stays.
            if EXPERIMENT_KIND_TAG not in experiment.tags:
                client.set_experiment_tag(
                    experiment.experiment_id, EXPERIMENT_KIND_TAG, ML_EXPERIMENT_KIND
                )
        except MlflowException as exc:
            if "already exists" in str(exc).lower():
                raise  # a concurrent creator won; _retrying looks it up again
            raise store_error(exc, self.tracking_uri) from exc
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
        self.activate()
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

    # The structured run name and standard tags (fraudkit.tracking.run_naming).
    run_name = staticmethod(run_naming.run_name)
    run_tags = staticmethod(run_naming.run_tags)

    def start_training_run(self, run_name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a run in the training experiment (see :meth:`start_run` for kwargs)."""
        return self.start_run(ExperimentType.TRAINING, run_name, **kwargs)

    def start_ab_test_run(self, model_a: str, model_b: str, **kwargs: Any) -> ActiveRun:
        """Start a run in the A/B testing experiment comparing ``model_a`` with ``model_b``."""
        tags = {MODEL_A_TAG: model_a, MODEL_B_TAG: model_b}
        tags.update(kwargs.pop("tags", None) or {})
        return self.start_run(
            ExperimentType.AB_TESTING, f"{model_a}-vs-{model_b}", tags=tags, **kwargs
        )

    def start_monitoring_run(
        self, model_name: str = "production_model", **kwargs: Any
    ) -> ActiveRun:
        """Start a run in the monitoring experiment watching ``model_name``."""
        tags = {MONITORED_MODEL_TAG: model_name, **(kwargs.pop("tags", None) or {})}
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
            raise store_error(exc, self.tracking_uri, what=f"run {run_id!r}") from exc

    def active_run_id(self, run_id: str | None = None) -> str:
        """Return ``run_id`` if given, else the active run's id (TrackingError without one)."""
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
        """Log ``params`` (nested mappings flattened with dots) in batches.

        See :func:`fraudkit.tracking.batch_logging.log_params` for the truncation policy.
        """
        batch_logging.log_params(self.client, self.active_run_id(run_id), params)

    def log_metrics(
        self,
        metrics: Mapping[str, Any],
        step: int | None = None,
        *,
        run_id: str | None = None,
        model_id: str | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        """Log numeric ``metrics`` at ``step`` in batches: :func:`.batch_logging.log_metrics`.

        With ``model_id`` (an MLflow 3 logged model's id) the metrics are also the model's
        metrics; with ``dataset`` (anything with a ``name`` and a ``digest``, such as an
        ``mlflow.data`` dataset) each metric names the data it was measured on (record the
        data itself with :meth:`log_dataset`). Non-finite values go to a tag, with a warning.
        """
        target = self.active_run_id(run_id)
        batch_logging.log_metrics(
            self.client, target, metrics, step, model_id=model_id, dataset=dataset
        )

    def set_tags(self, tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
        """Set run tags in batches (values stringified, cut to MLflow's limit)."""
        batch_logging.set_tags(self.client, self.active_run_id(run_id), tags)

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
        target = self.active_run_id(run_id)
        resolved: dict[str, Any] = {}
        for name, value in artifacts.items():
            if hasattr(value, "savefig"):
                resolved[name] = value
                continue
            path = Path(cast("str | os.PathLike", value))
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
        self.client.log_figure(self.active_run_id(run_id), figure, f"plots/{name}.png")

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
        records (same name and fingerprint) is not recorded twice. See
        :func:`fraudkit.tracking.model_logging.log_dataset`.
        """
        return model_logging.log_dataset(self, df, name=name, context=context, run_id=run_id).digest

    def log_frame(self, df: pd.DataFrame, name: str, *, run_id: str | None = None) -> str:
        """Log a DataFrame as the Parquet artifact ``data/<name>.parquet``; return its path."""
        return model_logging.log_frame(self.client, self.active_run_id(run_id), df, name)

    def load_frame(self, run_id: str, name: str) -> pd.DataFrame:
        """Load a DataFrame logged with :meth:`log_frame`: :func:`.model_logging.load_frame`."""
        return model_logging.load_frame(self.client, run_id, name)

    def log_reference(
        self,
        frame: pd.DataFrame,
        scores: ArrayLike,
        *,
        base_rate: tuple[int, int] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Keep a monitoring reference with the run: :func:`.model_logging.log_reference`.

        ``frame`` is data the model never trained on, ``scores`` its scores on it,
        ``base_rate`` the ``(frauds, rows)`` of all its labelled data; default the active
        run. Returns the run id, to pass to :meth:`load_reference`.
        """
        target = self.active_run_id(run_id)
        return model_logging.log_reference(self.client, target, frame, scores, base_rate=base_rate)

    def load_reference(self, run_id: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Load the reference of :meth:`log_reference`: :func:`.model_logging.load_reference`."""
        return model_logging.load_reference(self.client, run_id)

    def log_experiment_summary(
        self, summary: Mapping[str, Any], *, run_id: str | None = None
    ) -> None:
        """Log a results summary: ``summary.json`` plus its scalars as metrics and tags.

        Numbers and bools become metrics (bools as 0/1) under their own key; every scalar
        is also a tag ``fraudkit.summary.<key>`` so the run can be filtered on it.
        """
        batch_logging.log_summary(self.client, self.active_run_id(run_id), summary)

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
        schema: TransactionSchema | None = None,
        features: FeatureSpec | None = None,
        simulation: Mapping[str, Any] | None = None,
        threshold: float | None = None,
        training_data: pd.DataFrame | None = None,
    ) -> ModelVersion:
        """Log a model and register a version: :func:`.model_logging.log_model_with_metadata`."""
        return model_logging.log_model_with_metadata(
            self,
            model,
            model_name,
            metrics,
            params,
            artifacts,
            stage,
            input_example,
            signature,
            evaluation_dataset=evaluation_dataset,
            evaluation_dataset_name=evaluation_dataset_name,
            reason=reason,
            schema=schema,
            features=features,
            simulation=simulation,
            threshold=threshold,
            training_data=training_data,
        )

    # -- registry (each a tracking.registry / promotion / history function on self.client) --

    def promote_model(
        self,
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
        """Move the stage's alias to ``version`` if gates pass: :func:`.promotion.promote_model`."""
        return promotion.promote_model(
            self.client,
            model_name,
            version,
            stage,
            metric=metric,
            min_improvement=min_improvement,
            evaluation_data=evaluation_data,
            require_significant_ab=require_significant_ab,
            evidence_run_id=evidence_run_id,
            reason=reason,
        )

    def rollback_model(
        self,
        model_name: str,
        stage: str = "Production",
        *,
        to_version: str | int | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move the stage's alias back a holder: :func:`.registry.rollback_model`."""
        return registry.rollback_model(
            self.client, model_name, stage, to_version=to_version, reason=reason
        )

    def compare_model_versions(
        self,
        model_name: str,
        stages: Sequence[str] | None = None,
        versions: Sequence[str | int] | None = None,
    ) -> pd.DataFrame:
        """Compare versions side by side: :func:`.history.compare_model_versions`."""
        return history.compare_model_versions(self.client, model_name, stages, versions)

    def get_model_performance_history(
        self, model_name: str, metrics: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Every version's measurements: :func:`.history.get_model_performance_history`."""
        return history.get_model_performance_history(self.client, model_name, metrics)

    def detect_performance_degradation(
        self,
        model_name: str,
        metric: str = "average_precision",
        *,
        window: int = 3,
        tolerance: float = 0.1,
        stage: str = "Production",
        version: str | int | None = None,
        higher_is_better: bool = True,
    ) -> DegradationResult:
        """Recent vs training performance: :func:`.history.detect_performance_degradation`."""
        return history.detect_performance_degradation(
            self.client,
            model_name,
            metric,
            window=window,
            tolerance=tolerance,
            stage=stage,
            version=version,
            higher_is_better=higher_is_better,
        )

    def get_registry_overview(self) -> pd.DataFrame:
        """One row per registered version: :func:`.history.get_registry_overview`."""
        return history.get_registry_overview(self.client)

    def alias_history(self, model_name: str, alias: str | None = None) -> pd.DataFrame:
        """Every recorded alias move: :func:`fraudkit.tracking.registry.alias_history`."""
        return registry.alias_history(self.client, model_name, alias)

    def link_run_to_version(self, run_id: str, model_name: str, version: str | int) -> None:
        """Tag a run as measuring a version: :func:`.registry.link_run_to_version`."""
        registry.link_run_to_version(self.client, run_id, model_name, version)

    def get_version_by_alias(self, model_name: str, alias: str) -> ModelVersion | None:
        """The version holding ``alias``, or None: :func:`.registry.get_version_by_alias`."""
        return registry.get_version_by_alias(self.client, model_name, alias)

    def resolve_model_uri(self, uri: str) -> ModelVersion | None:
        """The version a ``models:/`` URI names: :func:`.registry.resolve_model_uri`."""
        return registry.resolve_model_uri(self.client, uri)


mlflow_manager = MlflowManager()
"""The default manager, on the tracking URI resolved from the environment at each use."""


def resolve_manager(manager: MlflowManager | str | None = None) -> MlflowManager:
    """Return the manager an orchestration call works with.

    Parameters
    ----------
    manager : MlflowManager or str, optional
        A manager, used as is; a tracking URI, for a manager on that store; or None, for
        the shared :data:`mlflow_manager` (the store the environment names at each use).
    """
    if manager is None:
        return mlflow_manager
    return MlflowManager(manager) if isinstance(manager, str) else manager
