"""What a model reads from a frame: the ``features`` step of its pipeline, and its checks.

On the Kaggle schema (:func:`kaggle_features`) the step picks ``V1``..``V28`` as they are,
``Amount`` through ``log1p`` and, if asked, the hour of day from ``Time``. For a schema
other than Kaggle's (:class:`~fraudkit.science.schema.TransactionSchema`,
:func:`schema_features`) it picks, by name:

- the amount, through ``log1p``;
- the schema's ``numeric`` columns and the behavioural features
  (:func:`~fraudkit.science.features.build_features`), computed beforehand;
- the ``categorical`` columns. Gradient boosting reads them natively: an
  :class:`~sklearn.preprocessing.OrdinalEncoder` codes them, the rarest beyond 254
  categories share one code, and a category unseen in training (or an empty cell) is -1,
  which the classifier treats as missing: "other". The logistic model and the random
  forest get a one-hot encoding whose infrequent and unseen categories share one column.

Empty numeric cells (a card's first transaction has no time since its previous one) stay
missing for gradient boosting, which handles them natively; the others impute the
training median and add a missing-indicator column. Scaling happens inside the numeric
branch, so category codes are never scaled. Everything is scikit-learn and numpy, so the
model loads with skops where fraudkit is not installed.

:func:`feature_blocks` and :func:`output_labels` read a fitted step back: the input column
behind each of its outputs, so importances and reasons speak of input columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

from fraudkit.core.exceptions import DataValidationError
from fraudkit.core.schema import AMOUNT_COLUMN, TIME_COLUMN, V_COLUMNS
from fraudkit.science.schema import PRESETS, TransactionSchema

__all__ = [
    "MAX_CATEGORIES",
    "SCHEMA_INPUTS_FIX",
    "categorical_mask",
    "check_kaggle_inputs",
    "drift_inputs",
    "feature_blocks",
    "input_columns",
    "kaggle_features",
    "output_labels",
    "require_inputs",
    "schema_features",
    "step_columns",
]

_SECONDS_PER_DAY = 86_400
# What to do about a frame that lacks a schema model's columns.
SCHEMA_INPUTS_FIX = (
    "pass the frame its schema checked, with the behavioural features the model was built for"
)
_KAGGLE_INPUTS_FIX = "pass a frame in the Kaggle creditcard.csv schema"
# Gradient boosting bins a categorical feature into at most 255 values; one is kept free.
MAX_CATEGORIES = 254
# A category seen in fewer training rows than this joins the one-hot "infrequent" column.
_MIN_CATEGORY_ROWS = 20


def _hour_of_day() -> Pipeline:
    """``sin`` and ``cos`` of the time of day: hour of day without a midnight jump.

    Built from scikit-learn parts and numpy ufuncs only (weights of a ColumnTransformer
    turn seconds into radians), so skops loads it with no fraudkit and no private scipy
    types; periodic splines would need the latter.
    """
    radians = ColumnTransformer(
        [("seconds", "passthrough", [TIME_COLUMN])],
        transformer_weights={"seconds": 2 * np.pi / _SECONDS_PER_DAY},
    )
    cyclic = FeatureUnion(
        [
            ("sin", FunctionTransformer(np.sin, feature_names_out="one-to-one")),
            ("cos", FunctionTransformer(np.cos, feature_names_out="one-to-one")),
        ]
    )
    return Pipeline([("radians", radians), ("cyclic", cyclic)])


def kaggle_features(include_hour: bool) -> ColumnTransformer:
    """The ``features`` step on the Kaggle schema (the hour of day from ``Time`` if asked)."""
    amount = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    transformers: list[tuple[str, Any, list[str]]] = [
        ("v", "passthrough", V_COLUMNS),
        ("amount", amount, [AMOUNT_COLUMN]),
    ]
    if include_hour:
        transformers.append(("hour", _hour_of_day(), [TIME_COLUMN]))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def step_columns(features: ColumnTransformer) -> list[str]:
    """Columns a ``features`` step reads from its input frame."""
    return [c for _, _, columns in features.transformers for c in columns]


def require_inputs(df: pd.DataFrame, columns: Sequence[str], what: str, fix: str) -> None:
    """Refuse ``df`` if it lacks one of ``columns``; ``fix`` says what to pass instead."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(f"{what} lacks feature column(s) {', '.join(missing)}; {fix}")


def check_kaggle_inputs(df: pd.DataFrame, columns: list[str], what: str) -> None:
    """Refuse a Kaggle-schema frame lacking ``columns`` or holding non-finite values there."""
    require_inputs(df, columns, what, _KAGGLE_INPUTS_FIX)
    try:
        values = df[columns].to_numpy(dtype=float)
    except (TypeError, ValueError) as error:
        raise DataValidationError(f"{what}: feature columns must be numeric ({error})") from None
    rows, cols = np.nonzero(~np.isfinite(values))
    if rows.size:
        raise DataValidationError(
            f"{what}: column {columns[cols[0]]} at index {df.index[rows[0]]!r} is not finite "
            f"({rows.size} such values); drop or impute those rows"
        )


def input_columns(schema: TransactionSchema, behaviour: Sequence[str]) -> list[str]:
    """The columns a schema model reads, in the order of its output features."""
    return [schema.amount, *schema.numeric, *behaviour, *schema.categorical]


def drift_inputs(
    schema: TransactionSchema | None, behaviour: Sequence[str] = ()
) -> tuple[list[str] | None, list[str]]:
    """The numeric and categorical columns drift monitoring tests for a model on ``schema``.

    ``(None, [])`` on the Kaggle schema (or None): the drift tests' default, ``V1``..``V28``
    and ``Amount``. Otherwise the amount, the ``numeric`` columns and ``behaviour``, and the
    ``categorical`` columns: what the model reads.
    """
    if schema is None or schema == PRESETS["kaggle"]:
        return None, []
    return [schema.amount, *schema.numeric, *behaviour], list(schema.categorical)


def schema_features(
    schema: TransactionSchema,
    behaviour: Sequence[str],
    model_type: str,
    scaling: BaseEstimator | str,
) -> ColumnTransformer:
    """The ``features`` step of a model on ``schema``'s columns and ``behaviour``.

    Parameters
    ----------
    schema : TransactionSchema
        Names the amount, numeric and categorical columns.
    behaviour : sequence of str
        Behavioural feature columns the frames will carry (``FeatureSpec.names()``).
    model_type : str
        ``"hist_gradient_boosting"`` reads categories and missing values natively.
    scaling : estimator or "passthrough"
        Applied to the amount and the numeric columns only.
    """
    native = model_type == "hist_gradient_boosting"
    numeric = [*schema.numeric, *behaviour]
    log_amount = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    steps: list[tuple[str, Any, list[str]]] = [
        ("amount", Pipeline([("log", log_amount), ("scale", _copy(scaling))]), [schema.amount])
    ]
    if numeric:
        branch: Any = _copy(scaling)
        if not native:
            impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
            branch = Pipeline([("impute", impute), ("scale", _copy(scaling))])
        steps.append(("numeric", branch, numeric))
    if schema.categorical:
        steps.append(("categorical", _categories(native), list(schema.categorical)))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False)


def categorical_mask(schema: TransactionSchema, behaviour: Sequence[str]) -> list[bool]:
    """Which output columns of :func:`schema_features` are categorical, for gradient
    boosting's ``categorical_features`` (numeric columns are missing-value native there,
    so no indicator columns are added)."""
    numeric = 1 + len(schema.numeric) + len(behaviour)
    return [False] * numeric + [True] * len(schema.categorical)


def _categories(native: bool) -> BaseEstimator:
    if native:
        return OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-1,
            max_categories=MAX_CATEGORIES,
        )
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=_MIN_CATEGORY_ROWS,
        sparse_output=False,
    )


def _copy(scaling: BaseEstimator | str) -> Any:
    """A fresh scaler for each branch ("passthrough" as it is)."""
    return scaling if isinstance(scaling, str) else clone(scaling)


def feature_blocks(model: Any) -> list[tuple[str, list[str], int]] | None:
    """(name, input columns, output width) of each block of a fitted ``features`` step.

    None for models that are not fraudkit pipelines.
    """
    features = getattr(model, "named_steps", {}).get("features")
    if not isinstance(features, ColumnTransformer) or not hasattr(features, "output_indices_"):
        return None
    widths = {name: s.stop - s.start for name, s in features.output_indices_.items()}
    return [
        (name, list(cols), widths[name]) for name, _, cols in features.transformers_ if widths[name]
    ]


def output_labels(model: Any, blocks: list[tuple[str, list[str], int]]) -> list[str]:
    """The input column behind each output of the ``features`` step.

    One-to-one blocks name outputs by column. The hour's sin and cos are reported as
    ``hour``. A one-hot column (``ProductCD_W``) or a missing-value indicator
    (``missingindicator_x``) counts towards the longest input column its name holds.
    """
    names = list(model.named_steps["features"].get_feature_names_out())
    labels: list[str] = []
    for name, columns, width in blocks:
        outputs, names = names[:width], names[width:]
        if width == len(columns) or name == "hour":
            labels += columns if width == len(columns) else [name] * width
            continue
        longest_first = sorted(columns, key=len, reverse=True)
        labels += [next((c for c in longest_first if c in out), name) for out in outputs]
    return labels
