"""The served model decides: one row per transaction, its alert and the reasons for it.

A registered version answers ``mlflow.pyfunc.load_model(...).predict``, ``mlflow models
serve`` and the kit's own scoring with the same typed frame:

========================== ======================================================
``fraud_probability``      the calibrated fraud probability
``alert``                  true at or above ``threshold``
``threshold``              the version's operating threshold (or the override)
``model_version``          the registered version, or the logged model id before
``reason_i``               the ``i``-th feature that raised the score most
``reason_i_contribution``  its exact contribution, in log-odds
                           (:mod:`fraudkit.science.reasons`)
========================== ======================================================

Inference params, declared in the signature: ``threshold`` overrides the version's, and
``reasons`` (0 to 10, default 3) sets how many reasons; 0 skips the attributions.

This module is an MLflow flavor module (:func:`save_model` and MLflow's loader hook). The model
stays a scikit-learn model serialised with skops (its ``sklearn`` flavor, which
:func:`fraudkit.tracking.registry.load_model` checks before loading); only the
``python_function`` flavor is fraudkit's, so no pickle is ever loaded. Serving needs
fraudkit installed where the model is served (``mlflow models serve --env-manager local``
in the kit's environment).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import DataValidationError, ModelError
from fraudkit.science.models import PROBABILITY_COLUMN
from fraudkit.science.reasons import ReasonExplainer, check_reasons, reason_columns
from fraudkit.tracking.store import quote

__all__ = [
    "DECISION_COLUMNS",
    "DEFAULT_REASONS",
    "UNSET_THRESHOLD",
    "DecisionModel",
    "decision_config",
    "decision_outputs",
    "decision_params",
    "registered_version",
    "save_model",
]

# Reasons per row when a caller does not say: what investigators look at first.
DEFAULT_REASONS = 3
# The columns before the reasons, in order.
DECISION_COLUMNS = (PROBABILITY_COLUMN, "alert", "threshold", "model_version")
# A threshold the kit never chose: the version was logged without one.
UNSET_THRESHOLD = 0.5


def decision_config(
    model_name: str,
    threshold: float | None,
    feature_means: Any = None,
    reasons: int = DEFAULT_REASONS,
) -> dict[str, Any]:
    """The ``model_config`` the served model is built from.

    Parameters
    ----------
    model_name : str
        Registered model name: the served model looks its version up there.
    threshold : float or None
        The version's operating threshold; None logs :data:`UNSET_THRESHOLD` (0.5).
    feature_means : array-like, optional
        A logistic model's transformed training means
        (:attr:`fraudkit.science.reasons.ReasonExplainer.feature_means`).
    reasons : int, default 3
        Reasons a row when the caller does not say: 0 for a model that cannot be
        explained (a logistic model logged without its training data).

    Raises
    ------
    ModelError
        ``threshold`` is not a number in [0, 1].
    """
    value = UNSET_THRESHOLD if threshold is None else _threshold(threshold)
    means = None if feature_means is None else [float(x) for x in np.ravel(feature_means)]
    return {
        "model_name": model_name,
        "threshold": value,
        "feature_means": means,
        "reasons": check_reasons(reasons),
    }


def _threshold(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ModelError(f"threshold must be a probability in [0, 1], got {value!r}")
    return number


def decision_outputs(k: int = DEFAULT_REASONS) -> Any:
    """The output schema: :data:`DECISION_COLUMNS` and ``k`` reasons."""
    from mlflow.types import ColSpec, Schema

    columns: list[Any] = [
        ColSpec("double", PROBABILITY_COLUMN),
        ColSpec("boolean", "alert"),
        ColSpec("double", "threshold"),
        ColSpec("string", "model_version"),
    ]
    for name in reason_columns(k):
        kind = "double" if name.endswith("_contribution") else "string"
        columns.append(ColSpec(kind, name, required=False))
    return Schema(columns)


def decision_params(threshold: float, reasons: int = DEFAULT_REASONS) -> Any:
    """The inference params: ``threshold`` (default the version's) and ``reasons``."""
    from mlflow.types import ParamSchema, ParamSpec

    return ParamSchema(
        [
            ParamSpec("threshold", "double", float(threshold)),
            ParamSpec("reasons", "long", reasons),
        ]
    )


class DecisionModel:
    """A fitted fraudkit model that answers with decisions (see the module docstring).

    Parameters
    ----------
    model : estimator
        The calibrated scikit-learn model.
    threshold : float
        Alert at or above this probability.
    model_version : str
        What the ``model_version`` column says.
    input_columns : list of str
        The columns the model reads, checked on every call.
    feature_means : list of float, optional
        A logistic model's transformed training means, for its reasons.
    reasons : int, default 3
        Reasons a row when ``params`` do not say.
    """

    def __init__(
        self,
        model: Any,
        threshold: float,
        model_version: str,
        input_columns: list[str],
        feature_means: list[float] | None = None,
        reasons: int = DEFAULT_REASONS,
    ) -> None:
        self.model = model
        self.reasons = check_reasons(reasons)
        self.threshold = _threshold(threshold)
        self.model_version = model_version
        self.input_columns = input_columns
        self.feature_means = feature_means
        self._explainer: ReasonExplainer | None = None

    def explainer(self) -> ReasonExplainer:
        """The reasons' explainer, built on first use (shap's start-up is paid only then)."""
        if self._explainer is None:
            self._explainer = ReasonExplainer(self.model, feature_means=self.feature_means)
        return self._explainer

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Decide on each row of ``data``.

        Parameters
        ----------
        data : pandas.DataFrame
            Transactions with :attr:`input_columns` (others are ignored).
        params : dict, optional
            ``threshold`` (override) and ``reasons`` (0 to 10, default 3).

        Returns
        -------
        pandas.DataFrame
            :data:`DECISION_COLUMNS` then ``reasons`` pairs of reason columns, one row per
            input row in its order.

        Raises
        ------
        DataValidationError
            ``data`` lacks an input column (served, MLflow's schema check names it first,
            and refuses text in a numeric column).
        ModelError
            A bad ``threshold`` or ``reasons``.
        """
        params = params or {}
        threshold = _threshold(params.get("threshold", self.threshold))
        k = check_reasons(params.get("reasons", self.reasons))
        frame = self._inputs(data)
        # An empty request gets an empty answer (scikit-learn refuses an empty frame).
        probability = (
            np.asarray(self.model.predict_proba(frame), dtype=float)[:, 1]
            if len(frame)
            else np.empty(0)
        )
        decided = pd.DataFrame(
            {
                PROBABILITY_COLUMN: probability,
                "alert": probability >= threshold,
                "threshold": np.full(probability.size, threshold),
                "model_version": np.full(probability.size, self.model_version, dtype=object),
            }
        )
        if k == 0:
            return decided
        reasons = self.explainer().reasons(frame, k)
        return pd.concat([decided, reasons.set_axis(decided.index)], axis=1)

    def _inputs(self, data: Any) -> pd.DataFrame:
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"the frame lacks the model's input column(s) {', '.join(missing)}; the model "
                f"reads {', '.join(self.input_columns)} (compute behavioural features first, "
                "with fraudkit.science.features.build_features on the raw transactions, or "
                "score the raw file with `fraudkit score`, which computes them)"
            )
        return frame.reset_index(drop=True)


def save_model(
    path: str,
    mlflow_model: Any,
    *,
    sk_model: Any,
    model_config: dict[str, Any],
    skops_trusted_types: list[str],
    pip_requirements: list[str],
    signature: Any = None,
    input_example: Any = None,
    metadata: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Save ``sk_model`` as the kit's served model (MLflow's flavor-module protocol).

    The ``sklearn`` flavor keeps the model (skops); the ``python_function`` flavor is
    replaced by this module's loader with ``model_config`` (:func:`decision_config`).
    Called by ``mlflow.models.Model.log(flavor=fraudkit.tracking.served, ...)``.
    """
    import mlflow.pyfunc
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.sklearn import save_model as save_sklearn_model

    save_sklearn_model(
        sk_model,
        path,
        mlflow_model=mlflow_model,
        serialization_format="skops",
        skops_trusted_types=skops_trusted_types,
        pip_requirements=pip_requirements,
        signature=signature,
        input_example=input_example,
        pyfunc_predict_fn="predict_proba",
        metadata=metadata,
    )
    sklearn_pyfunc = mlflow_model.flavors.pop(mlflow.pyfunc.FLAVOR_NAME)
    environments = sklearn_pyfunc.get(mlflow.pyfunc.ENV) or {}
    mlflow.pyfunc.add_to_model(
        mlflow_model,
        loader_module=__name__,
        model_path=sklearn_pyfunc.get("model_path"),
        conda_env=environments.get("conda"),
        python_env=environments.get("virtualenv"),
        model_config=model_config,
    )
    mlflow_model.save(str(Path(path) / MLMODEL_FILE_NAME))


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> DecisionModel:
    """MLflow's loader hook: the :class:`DecisionModel` of the model saved at ``path``."""
    from mlflow.models import Model
    from mlflow.sklearn import load_model as load_sklearn_model

    folder = Path(path).parent if Path(path).is_file() else Path(path)
    config = model_config or {}
    spec = Model.load(str(folder))
    inputs = spec.get_input_schema()
    columns = inputs.input_names() if inputs is not None and inputs.has_input_names() else []
    return DecisionModel(
        load_sklearn_model(str(folder)),
        threshold=config.get("threshold", UNSET_THRESHOLD),
        model_version=registered_version(spec, config.get("model_name")),
        input_columns=[str(c) for c in columns],
        feature_means=config.get("feature_means"),
        reasons=config.get("reasons", DEFAULT_REASONS),
    )


def registered_version(spec: Any, model_name: str | None) -> str:
    """The registered version holding the logged model ``spec``, else its model id.

    Looked up in the tracking store MLflow is pointed at (``MLFLOW_TRACKING_URI``, as
    ``mlflow models serve`` and the kit set it); before registration, or with no store to
    ask, the logged model id answers.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    model_id = str(getattr(spec, "model_id", None) or "")
    run_id = getattr(spec, "run_id", None)
    if not model_name or not run_id:
        return model_id
    try:
        versions = MlflowClient().search_model_versions(
            f"name = {quote(model_name)} and run_id = '{run_id}'"
        )
    except (MlflowException, OSError):
        return model_id
    for version in versions:
        if version.source == f"models:/{model_id}" or version.model_id == model_id:
            return str(version.version)
    return model_id
