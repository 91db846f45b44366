"""What a model reads from a frame in a declared schema: the ``features`` step of its pipeline.

For a schema other than Kaggle's (:class:`~fraudkit.science.schema.TransactionSchema`),
the first step of every model picks, by name:

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

from fraudkit.science.schema import TransactionSchema

__all__ = ["MAX_CATEGORIES", "categorical_mask", "input_columns", "schema_features"]

# Gradient boosting bins a categorical feature into at most 255 values; one is kept free.
MAX_CATEGORIES = 254
# A category seen in fewer training rows than this joins the one-hot "infrequent" column.
_MIN_CATEGORY_ROWS = 20


def input_columns(schema: TransactionSchema, behaviour: Sequence[str]) -> list[str]:
    """The columns a schema model reads, in the order of its output features."""
    return [schema.amount, *schema.numeric, *behaviour, *schema.categorical]


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
