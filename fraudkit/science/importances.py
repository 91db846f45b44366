"""Which features a fitted fraudkit model relies on.

Random forests report their impurity importances, logistic regression its absolute
coefficients, and other models (gradient boosting included) the drop in average precision
when a feature is permuted. Importances are reported per input column of the Kaggle schema:
the hour of day's sin and cos together as ``"hour"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraudkit.science.model_inputs import feature_blocks, output_labels
from fraudkit.science.models import base_model, class_labels

__all__ = ["feature_importances"]


def _native_importances(model: Any) -> pd.Series | None:
    classifier: Any = model[-1] if isinstance(model, Pipeline) else model
    if hasattr(classifier, "feature_importances_"):
        values = np.asarray(classifier.feature_importances_)
    elif hasattr(classifier, "coef_"):
        values = np.abs(np.asarray(classifier.coef_)).ravel()
    else:
        return None
    blocks = feature_blocks(model)
    if blocks is None:
        names = getattr(classifier, "feature_names_in_", None)
        return None if names is None else pd.Series(values, index=list(names))
    return pd.Series(values, index=output_labels(model, blocks)).groupby(level=0, sort=False).sum()


def _permutation_importances(
    model: Any, df: pd.DataFrame, n_repeats: int, random_state: int, label: str
) -> pd.Series:
    y = class_labels(df, "importance frame", label=label)
    blocks = feature_blocks(model)
    if blocks is None:
        columns = [c for c in FEATURE_COLUMNS if c in df.columns]
        labels = columns
    else:
        columns = [column for _, block_columns, _ in blocks for column in block_columns]
        labels = [
            column if width == len(block_columns) else name
            for name, block_columns, width in blocks
            for column in block_columns
        ]
    result = permutation_importance(
        model,
        df[columns],
        y,
        scoring="average_precision",
        n_repeats=n_repeats,
        random_state=random_state,
    )
    return pd.Series(result["importances_mean"], index=labels)


def feature_importances(
    model: Any,
    df: pd.DataFrame,
    *,
    n_repeats: int = 5,
    random_state: int = 0,
    label: str = LABEL_COLUMN,
) -> pd.Series:
    """Importance of each input feature, most important first.

    Random forests report their impurity importances, logistic regression the absolute
    coefficients (comparable because features are scaled; with ``scaling_method="none"``
    they are not), and other models (gradient boosting included) the mean drop in
    average precision when the feature is permuted in ``df``. The hour's sin and cos
    are reported together as ``"hour"``.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline or estimator
        A fitted model, usually from :func:`train_model`.
    df : pandas.DataFrame
        Labelled transactions for permutation importance (validation data, ideally a few
        tens of thousands of rows: each repeat re-scores the frame once per feature).
        Unused for native importances.
    n_repeats : int, default 5
        Permutations per feature.
    random_state : int, default 0
        Seed of the permutations.
    label : str, default ``Class``
        The label column of ``df`` (a schema's ``label``).

    Returns
    -------
    pandas.Series
        Importance indexed by feature name, sorted in descending order.
    """
    # The calibration map is monotone: the ranking, and so every importance, is the
    # pipeline's.
    pipeline = base_model(model)
    importances = _native_importances(pipeline)
    if importances is None:
        importances = _permutation_importances(pipeline, df, n_repeats, random_state, label)
    importances.name = "importance"
    importances.index.name = "feature"
    return importances.sort_values(ascending=False, kind="stable")
