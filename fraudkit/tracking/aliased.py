"""The version behind an alias, loaded with everything a notebook needs about it.

:func:`load_alias` returns an :class:`AliasedModel`: the registered version, its model,
its operating threshold and test metrics, the monitoring reference kept with its run
(:func:`fraudkit.tracking.model_logging.load_reference`), and, for a model on a declared
schema, its schema, feature definitions and simulated world
(:func:`fraudkit.tracking.model_packaging.read_definitions`). Monitoring, the A/B test and
retraining start from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.exceptions import RegistryError
from fraudkit.science.features import FeatureSpec
from fraudkit.science.schema import TransactionSchema
from fraudkit.tracking.model_logging import BASE_RATE_METRICS, load_reference
from fraudkit.tracking.model_packaging import read_definitions, read_simulation
from fraudkit.tracking.registry import get_version_by_alias, load_model
from fraudkit.tracking.store import open_client, run_metrics

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = ["AliasedModel", "load_alias"]


@dataclass(frozen=True, eq=False)
class AliasedModel:
    """The version behind an alias, loaded with what monitoring and A/B tests need.

    Attributes
    ----------
    version : ModelVersion
        The registered version holding the alias.
    model : mlflow.pyfunc.PyFuncModel
        The model, loaded with :func:`fraudkit.tracking.registry.load_model`; score it with
        :func:`fraudkit.science.models.predict_scores`.
    threshold : float
        The operating threshold: the ``threshold`` metric of the version's run.
    metrics : dict
        Every metric of the version's run (its test evaluation), the baseline of alerts.
    reference : pandas.DataFrame
        The monitoring reference kept with the version's run.
    reference_scores : numpy.ndarray
        The model's scores on ``reference``.
    schema : TransactionSchema or None
        The schema the version was trained on; None for Kaggle's.
    features : FeatureSpec or None
        Its behavioural feature definitions; None for Kaggle's schema.
    simulation : dict or None
        The simulated world it was trained on, if any (see
        :func:`~fraudkit.tracking.model_packaging.read_simulation`).
    """

    version: ModelVersion
    model: Any
    threshold: float
    metrics: dict[str, float]
    reference: pd.DataFrame
    reference_scores: np.ndarray
    schema: TransactionSchema | None = None
    features: FeatureSpec | None = None
    simulation: dict[str, Any] | None = None

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``: the URI of exactly this version."""
        return f"models:/{self.version.name}/{self.version.version}"

    @property
    def base_rate(self) -> tuple[int, int] | None:
        """``(frauds, rows)`` of the labelled data the version was trained and tested on.

        Read from the run's metrics :data:`BASE_RATE_METRICS` (``DataSplit.base_rate``,
        logged by the training notebooks); None when the run did not log them. Monitoring
        weighs the reference to this fraud rate
        (:func:`fraudkit.science.monitoring.monitor_window`).
        """
        frauds, rows = (self.metrics.get(key) for key in BASE_RATE_METRICS)
        if frauds is None or rows is None:
            return None
        return int(frauds), int(rows)


def load_alias(model_name: str, alias: str, *, client: MlflowClient | None = None) -> AliasedModel:
    """Load the version holding ``alias`` with its threshold, metrics and monitoring reference.

    Parameters
    ----------
    model_name : str
        Registered model name.
    alias : str
        The alias, or a stage name (``"Production"`` -> ``production``).
    client : MlflowClient, optional
        The store to read; default the kit's tracking store
        (:func:`fraudkit.core.config.tracking_uri`).

    Returns
    -------
    AliasedModel

    Raises
    ------
    RegistryError
        Unknown model, no version holds the alias, or its run logged no ``threshold``.
    ModelError
        The model cannot be loaded (or holds types the kit does not trust).
    TrackingError
        The version's run holds no monitoring reference.
    """
    if client is None:
        client = open_client(config.tracking_uri())
    version = get_version_by_alias(client, model_name, alias)
    if version is None:
        raise RegistryError(
            f"no version of {model_name!r} holds alias {config.stage_to_alias(alias)!r}; run "
            "the training notebook first, or promote a version with "
            f"mlflow_manager.promote_model({model_name!r}, VERSION)"
        )
    metrics = run_metrics(client, version.run_id)
    if "threshold" not in metrics:
        raise RegistryError(
            f"version {version.version} of {model_name!r}: its run {version.run_id} logged "
            "no 'threshold' metric; log the operating threshold with "
            "mlflow_manager.log_metrics({'threshold': ...}) when training"
        )
    model = load_model(f"models:/{model_name}/{version.version}", client=client)
    # The threshold came from the version's run, so it has one.
    reference, scores = load_reference(client, str(version.run_id))
    schema, features = read_definitions(model)
    return AliasedModel(
        version=version,
        model=model,
        threshold=float(metrics["threshold"]),
        metrics=metrics,
        reference=reference,
        reference_scores=scores,
        schema=schema,
        features=features,
        simulation=read_simulation(model),
    )
