"""Model factory, training, calibration and scoring.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline` with three named steps:

``features``
    A :class:`~sklearn.compose.ColumnTransformer` that picks the features out of a raw
    Kaggle-schema frame by name (``V1``..``V28`` as they are, ``Amount`` through
    ``np.log1p``, optionally the hour of day as sin/cos of ``Time``) and drops
    everything else, so ``model.predict_proba(window_df)`` works on frames that still
    carry ``Time`` and ``Class``. Raw ``Time`` is never a feature: it only grows, so a
    model that used it would not transfer to later traffic.
``scaling``
    ``StandardScaler``, ``RobustScaler`` or ``"passthrough"``.
``classifier``
    The estimator, with class-imbalance handling that suits it.

:func:`train_model` wraps the fitted pipeline in a
:class:`~sklearn.calibration.CalibratedClassifierCV` over a
:class:`~sklearn.frozen.FrozenEstimator`, calibrated on a slice of time after the training
data, so ``predict_proba`` is a fraud probability: thresholds, expected fraud counts and
label-free estimates then mean what they say. Class weights (logistic regression, random
forest) buy ranking on rare fraud but inflate the scores (the balanced logistic baseline
predicted 37 times the real fraud count); the calibration undoes that. The default method,
Platt's sigmoid, is strictly increasing, so it leaves the ranking and hence AUPRC and ROC
AUC exactly as they were; isotonic regression can fit any monotone shape but merges scores
into ties, which costs AUPRC on the few frauds of a calibration slice.

Models hold only scikit-learn and numpy objects (no function defined in fraudkit), so
MLflow's skops serialisation loads them where fraudkit is not installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    RobustScaler,
    StandardScaler,
)

from fraudkit.core.exceptions import DataValidationError, ModelError, SmallSampleWarning
from fraudkit.core.schema import LABEL_COLUMN, TIME_COLUMN
from fraudkit.science.metrics import few_frauds_message
from fraudkit.science.model_inputs import (
    SCHEMA_INPUTS_FIX,
    categorical_mask,
    check_kaggle_inputs,
    input_columns,
    kaggle_features,
    require_inputs,
    schema_features,
    step_columns,
)
from fraudkit.science.schema import PRESETS, TransactionSchema

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_CALIBRATION",
    "DEFAULT_MODEL_TYPE",
    "MODEL_TYPES",
    "PROBABILITY_COLUMN",
    "SCALING_METHODS",
    "base_model",
    "build_model",
    "class_labels",
    "predict_scores",
    "train_model",
]

MODEL_TYPES: tuple[str, ...] = ("logistic_regression", "hist_gradient_boosting", "random_forest")
DEFAULT_MODEL_TYPE = "hist_gradient_boosting"
SCALING_METHODS: tuple[str, ...] = ("standard", "robust", "none")
CALIBRATION_METHODS: tuple[str, ...] = ("sigmoid", "isotonic", "none")
DEFAULT_CALIBRATION = "sigmoid"
# The served model's probability column (fraudkit.tracking.served).
PROBABILITY_COLUMN = "fraud_probability"
# Share of the training period's latest rows held out for calibration when no separate
# calibration frame is given.
DEFAULT_CALIBRATION_SHARE = 0.2
# Platt scaling fits two numbers; below this many frauds in the calibration slice even
# those are guesses (and scikit-learn needs one fraud per internal fold).
MIN_CALIBRATION_FRAUDS = 2

# Defaults sized for two cores and the 284,807 rows (~490 frauds) of the Kaggle data set,
# tuned on the simulator (benchmarks/bench_models.py).
# Gradient boosting: with so few positives, a leaf's hessian sum is tiny and unregularised
# Newton steps overshoot (scikit-learn's defaults stop after 10 iterations at ~55 % of
# the Bayes-optimal AUPRC); l2_regularization and larger leaves fix that. Early stopping
# is off because its 10 % hold-out costs ~50 of the frauds, and class weights are off
# because they lowered AUPRC (0.91 vs 0.95 of the ceiling).
# Random forest: scikit-learn's defaults take ~165 s; 10 % row subsamples per tree keep
# ~95 % of the AUPRC at ~10 s. "balanced_subsample" reweights each subsample.
_ESTIMATORS: dict[str, tuple[type[BaseEstimator], dict[str, Any]]] = {
    "logistic_regression": (
        LogisticRegression,
        {"class_weight": "balanced", "max_iter": 1_000},
    ),
    "hist_gradient_boosting": (
        HistGradientBoostingClassifier,
        {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 100,
            "l2_regularization": 10.0,
            "early_stopping": False,
            "random_state": 0,
        },
    ),
    "random_forest": (
        RandomForestClassifier,
        {
            "n_estimators": 100,
            "max_samples": 0.1,
            "max_depth": 12,
            "min_samples_leaf": 5,
            "class_weight": "balanced_subsample",
            "n_jobs": -1,
            "random_state": 0,
        },
    ),
}


def _choice_error(what: str, value: object, allowed: tuple[str, ...]) -> ModelError:
    return ModelError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")


def _scaling(method: str) -> BaseEstimator | str:
    scalers = {"standard": StandardScaler(), "robust": RobustScaler(), "none": "passthrough"}
    if method not in scalers:
        raise _choice_error("scaling method", method, SCALING_METHODS)
    return scalers[method]


def build_model(
    model_type: str = DEFAULT_MODEL_TYPE,
    *,
    scaling_method: str = "standard",
    include_hour: bool = False,
    schema: TransactionSchema | None = None,
    behaviour: Sequence[str] = (),
    **params: Any,
) -> Pipeline:
    """Build an unfitted fraud model that accepts a raw Kaggle-schema frame, or a frame
    in another declared schema.

    Parameters
    ----------
    model_type : str, default "hist_gradient_boosting"
        One of :data:`MODEL_TYPES`.
    scaling_method : str, default "standard"
        One of :data:`SCALING_METHODS`; applied to every feature after selection.
    include_hour : bool, default False
        Add the hour of day, derived from ``Time`` as its sine and cosine, as features
        (Kaggle schema only).
    schema : TransactionSchema, optional
        A schema other than Kaggle's: the model reads its amount, numeric and categorical
        columns and ``behaviour`` (:mod:`fraudkit.science.model_inputs` says how).
    behaviour : sequence of str, default ()
        With ``schema``, the behavioural feature columns the frames carry.
    **params
        Classifier parameters; they override fraudkit's defaults (e.g. ``C=0.1``,
        ``max_iter=300``, ``n_estimators=200``).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``features``, ``scaling``, ``classifier``. With ``schema``, the scaling
        happens inside ``features`` (category codes are never scaled) and the ``scaling``
        step passes through.

    Raises
    ------
    ModelError
        For an unknown model type, scaling method or classifier parameter, or
        ``include_hour`` with a schema.
    """
    if model_type not in _ESTIMATORS:
        raise _choice_error("model type", model_type, MODEL_TYPES)
    estimator_class, defaults = _ESTIMATORS[model_type]
    valid = estimator_class().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ModelError(
            f"unknown parameter(s) {', '.join(unknown)} for {model_type}; "
            f"valid parameters: {', '.join(sorted(valid))}"
        )
    scaling = _scaling(scaling_method)
    if schema is None or schema == PRESETS["kaggle"]:
        features: ColumnTransformer = kaggle_features(include_hour)
    else:
        if include_hour:
            raise ModelError(
                "include_hour reads the Kaggle schema's Time; with a schema of your own, "
                "add the hour as a numeric column instead"
            )
        features = schema_features(schema, behaviour, model_type, scaling)
        scaling = "passthrough"
        if model_type == "hist_gradient_boosting" and schema.categorical:
            defaults = defaults | {"categorical_features": categorical_mask(schema, behaviour)}
    return Pipeline(
        [
            ("features", features),
            ("scaling", scaling),
            ("classifier", estimator_class(**(defaults | params))),
        ]
    )


def class_labels(
    df: pd.DataFrame, what: str, *, both_classes: bool = True, label: str = LABEL_COLUMN
) -> np.ndarray:
    """The label column of ``df`` (``Class`` by default) as int 0/1.

    Parameters
    ----------
    df : pandas.DataFrame
        Labelled transactions.
    what : str
        How error messages name ``df`` (e.g. ``"training frame"``).
    both_classes : bool, default True
        Whether both classes must be present.
    label : str, default "Class"
        The label column (a schema's ``label``).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DataValidationError
        Without a ``Class`` column, with labels other than 0/1, or with one class only
        when ``both_classes``.
    """
    if label not in df.columns:
        raise DataValidationError(
            f"{what} has no {label!r} column; pass labelled transactions "
            "(0 = legitimate, 1 = fraud)"
        )
    y = df[label].to_numpy()
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise DataValidationError(
            f"{what}: column {label} must hold 0 (legitimate) or 1 (fraud); "
            f"{int(bad.sum())} rows do not, the first at index {df.index[bad][0]!r}"
        )
    if both_classes and np.unique(y).size < 2:
        raise DataValidationError(
            f"{what} holds only class {int(y[0])} ({y.size} rows); "
            "a fraud model needs both legitimate (0) and fraud (1) rows"
        )
    return y.astype(int)


def train_model(
    train_df: pd.DataFrame,
    model_type: str = DEFAULT_MODEL_TYPE,
    *,
    calibration: str = DEFAULT_CALIBRATION,
    calibration_df: pd.DataFrame | None = None,
    calibration_share: float = DEFAULT_CALIBRATION_SHARE,
    schema: TransactionSchema | None = None,
    behaviour: Sequence[str] = (),
    **params: Any,
) -> Pipeline | CalibratedClassifierCV:
    """Fit a model on a labelled frame and calibrate its scores on later transactions.

    The pipeline of :func:`build_model` is fitted on the training period, frozen, and
    calibrated with scikit-learn's :class:`~sklearn.calibration.CalibratedClassifierCV`
    on transactions after it: ``calibration_df`` when given (typically the validation
    period), otherwise the latest ``calibration_share`` of ``train_df`` by ``Time``, which
    the pipeline then does not train on. Never pass the test period: the test would then
    grade the calibration on its own data.

    Parameters
    ----------
    train_df : pandas.DataFrame
        Kaggle-schema transactions with the ``Class`` label and both classes present.
    model_type : str, default "hist_gradient_boosting"
        One of :data:`MODEL_TYPES`.
    calibration : {"sigmoid", "isotonic", "none"}, default "sigmoid"
        ``"sigmoid"`` (Platt) keeps the ranking, so AUPRC is unchanged; ``"isotonic"``
        is free-form but ties scores; ``"none"`` returns the fitted pipeline as it is,
        trained on all of ``train_df``.
    calibration_df : pandas.DataFrame, optional
        Labelled transactions later than ``train_df`` to calibrate on.
    calibration_share : float, default 0.2
        Share of ``train_df`` (its latest rows) held out for calibration when
        ``calibration_df`` is None; in (0, 0.5].
    schema : TransactionSchema, optional
        The frames' schema when it is not Kaggle's: its label and time columns are used,
        and :func:`build_model` reads its columns and ``behaviour``. The frames have
        passed the schema's check, so their values are not checked again.
    behaviour : sequence of str, default ()
        With ``schema``, the behavioural feature columns the frames carry.
    **params
        Passed to :func:`build_model` (``scaling_method``, ``include_hour`` and classifier
        parameters).

    Returns
    -------
    sklearn.calibration.CalibratedClassifierCV or sklearn.pipeline.Pipeline
        The calibrated model (its ``predict_proba`` is a fraud probability), or the
        pipeline itself with ``calibration="none"``. :func:`base_model` returns the
        pipeline of either.

    Raises
    ------
    DataValidationError
        When ``Class`` or a feature column is missing, a label is not 0/1, only one
        class is present or a feature is not a finite number.
    ModelError
        For an unknown model type, parameter or calibration method, or a
        ``calibration_share`` outside (0, 0.5].

    Warns
    -----
    SmallSampleWarning
        When the calibration data hold fewer than two frauds: the uncalibrated pipeline is
        returned, since two numbers cannot be fitted to one fraud.
    """
    if calibration not in CALIBRATION_METHODS:
        raise _choice_error("calibration method", calibration, CALIBRATION_METHODS)
    if not 0.0 < calibration_share <= 0.5:
        raise ModelError(
            f"calibration_share must lie in (0, 0.5], got {calibration_share!r}; it is the "
            "share of the latest training rows held out to calibrate on"
        )
    model = build_model(model_type, schema=schema, behaviour=behaviour, **params)
    own = schema if schema is not None and schema != PRESETS["kaggle"] else None
    label = schema.label if schema is not None else LABEL_COLUMN
    class_labels(train_df, "training frame", label=label)
    frames = [("training frame", train_df)]
    if calibration_df is not None and calibration != "none":
        frames.append(("calibration frame", calibration_df))
    for what, frame in frames:
        if own is not None:
            require_inputs(frame, input_columns(own, behaviour), what, SCHEMA_INPUTS_FIX)
        else:
            check_kaggle_inputs(frame, step_columns(model.named_steps["features"]), what)
    fit_df, calibrate_df = train_df, None
    if calibration != "none":
        if calibration_df is None:
            time = schema.time if schema is not None else TIME_COLUMN
            ordered = train_df.sort_values(time, kind="stable")
            cut = len(ordered) - max(1, round(calibration_share * len(ordered)))
            fit_df, calibrate_df = ordered.iloc[:cut], ordered.iloc[cut:]
        else:
            calibrate_df = calibration_df
    what = "training frame (without its calibration slice)"
    model.fit(fit_df, class_labels(fit_df, what, label=label))
    classifier = model.named_steps["classifier"]
    if isinstance(classifier, RandomForestClassifier):
        # A forest predicts on threads that add the trees' votes in the order they finish,
        # so two predictions of a row could differ in the last bit. On one thread the
        # notebook, pyfunc, the server and batch scoring give the same bits.
        classifier.set_params(n_jobs=1)
    if calibrate_df is None:
        return model
    y_calibrate = _calibrationclass_labels(calibrate_df, label)
    if y_calibrate is None:
        return model
    # cv=2: with a frozen estimator the folds only gather its predictions (nothing is
    # refitted); scikit-learn still wants one fraud per fold, and 2 is the fewest.
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=calibration, cv=2)
    return calibrated.fit(calibrate_df, y_calibrate)


def _calibrationclass_labels(calibrate_df: pd.DataFrame, label: str) -> np.ndarray | None:
    """Labels of the calibration frame, or None (with a warning) when too few are fraud."""
    if label not in calibrate_df.columns:
        raise DataValidationError(
            f"calibration frame has no {label!r} column; calibrate on labelled "
            "transactions later than the training data"
        )
    y = class_labels(calibrate_df, "calibration frame", both_classes=False, label=label)
    n_fraud = int(y.sum())
    if n_fraud < MIN_CALIBRATION_FRAUDS:
        few = few_frauds_message(n_fraud, y.size, "the calibration slice", MIN_CALIBRATION_FRAUDS)
        warnings.warn(
            f"{few}; the model is returned uncalibrated, so its scores are not probabilities",
            SmallSampleWarning,
            stacklevel=3,
        )
        return None
    return y


def base_model(model: Any) -> Any:
    """The fitted pipeline inside a calibrated model (or ``model`` itself).

    Parameters
    ----------
    model : estimator
        A model from :func:`train_model`, calibrated or not.

    Returns
    -------
    estimator
        The :class:`~sklearn.pipeline.Pipeline` that ranks the transactions.
    """
    if isinstance(model, CalibratedClassifierCV) and hasattr(model, "calibrated_classifiers_"):
        calibrated: Any = model.calibrated_classifiers_
        inner = calibrated[0].estimator
        return inner.estimator if isinstance(inner, FrozenEstimator) else inner
    return model


def _positive_column(output: Any, classes: Any) -> np.ndarray:
    """Fraud-probability column of a (n,), (n, 1) or (n, 2) prediction output, or of the
    served model's decision frame."""
    if isinstance(output, pd.DataFrame) and PROBABILITY_COLUMN in output.columns:
        return output[PROBABILITY_COLUMN].to_numpy(dtype=float)
    array = np.asarray(output, dtype=float)
    if array.ndim == 2 and array.shape[1] == 2:
        column = list(classes).index(1) if classes is not None else 1
        return array[:, column]
    if array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        return array.ravel()
    raise ModelError(
        f"model output has shape {array.shape}; expected (n,), (n, 1) or (n, 2) fraud scores"
    )


def predict_scores(model: Any, df: pd.DataFrame) -> np.ndarray:
    """Fraud probability of each row of ``df``.

    Works by duck typing on scikit-learn estimators (``predict_proba``) and on objects
    whose ``predict`` returns the served model's decision frame (its
    ``fraud_probability``, asked for without reasons), an ``(n, 2)`` array or frame (an
    MLflow pyfunc model logged with ``pyfunc_predict_fn="predict_proba"``) or a 1-D array
    of scores. The ``Class`` column is dropped before predicting, so no model can see the
    label.

    Parameters
    ----------
    model : object
        A fitted model.
    df : pandas.DataFrame
        Transactions in the Kaggle schema (``Time`` and ``Class`` may be present).

    Returns
    -------
    numpy.ndarray of shape (n,)
        Fraud scores, higher meaning more likely fraud.

    Raises
    ------
    ModelError
        When the model has neither ``predict_proba`` nor ``predict``, or returns an output
        of the wrong shape.
    """
    features = df.drop(columns=[LABEL_COLUMN], errors="ignore")
    if hasattr(model, "predict_proba"):
        output = model.predict_proba(features)
    elif hasattr(model, "predict"):
        output = model.predict(_signature_columns(model, features), **_fast_params(model))
    else:
        raise ModelError(f"{type(model).__name__} has neither predict_proba nor predict")
    scores = _positive_column(output, getattr(model, "classes_", None))
    if scores.shape != (len(df),):
        raise ModelError(f"model returned {scores.size} scores for {len(df)} rows")
    return scores


def _fast_params(model: Any) -> dict[str, Any]:
    """``params={"reasons": 0}`` for a served model that gives reasons: scores only."""
    metadata = getattr(model, "metadata", None)
    signature = getattr(metadata, "signature", None)
    params = getattr(signature, "params", None)
    names = {spec.name for spec in params} if params is not None else set()
    return {"params": {"reasons": 0}} if "reasons" in names else {}


def _signature_columns(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    # A pyfunc model drops columns outside its signature with a logged warning on every
    # call (transactions carry `Time`, which orders them but is no feature): pass only the
    # signature's columns. Missing ones are left for MLflow's own schema error to name.
    metadata = getattr(model, "metadata", None)
    get_input_schema = getattr(metadata, "get_input_schema", None)
    schema = get_input_schema() if get_input_schema is not None else None
    if schema is None or not schema.has_input_names():
        return features
    names = schema.input_names()
    return features[names] if set(names) <= set(features.columns) else features
