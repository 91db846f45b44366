"""Reasons for a score: exact additive attributions of a fraudkit model, per input feature.

An investigator checks first the features that pushed a transaction's score up. Every kit
model is a :class:`~sklearn.pipeline.Pipeline` (``features``, ``scaling``, ``classifier``)
wrapped in a :class:`~sklearn.calibration.CalibratedClassifierCV`, which SHAP's explainers
cannot open (shap #899, #1196). :class:`ReasonExplainer` explains through it:

* the pipeline's base score, which is what the calibration reads, is attributed exactly:
  the logistic model's coefficients times each feature's deviation from its training mean;
  path-dependent TreeSHAP for gradient boosting (its log-odds) and the random forest (its
  share of fraud votes), on the trees shap's :class:`~shap.TreeExplainer` parses, computed
  on every core by :func:`fraudkit.science.treeshap.tree_shap`;
* Platt's sigmoid calibration is ``logit(p) = -(a * score + b)``, linear in the score, so
  scaling every contribution by ``-a`` keeps them exact and additive in the calibrated
  probability's log-odds: ``base_value + contributions.sum(axis=1) == logit(p)``;
* isotonic calibration is monotone but not linear: the contributions stay in the base
  score's units, and the ranking of reasons carries over to the probability.

Contributions of the columns the ``features`` step derives from one input column (the
hour's sine and cosine, a one-hot encoding, a missing-value indicator) are summed, so each
reason names a column of the input frame (``hour`` for the hour of day).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from fraudkit.core.exceptions import ModelError
from fraudkit.science.model_inputs import feature_blocks, output_labels
from fraudkit.science.models import base_model
from fraudkit.science.treeshap import TreeArrays, tree_shap

__all__ = [
    "BASE_SCORE",
    "LOG_ODDS",
    "MAX_REASONS",
    "Attributions",
    "ReasonExplainer",
    "check_reasons",
    "reason_columns",
]

# The most reasons a caller may ask for per row (the serving contract's upper bound).
MAX_REASONS = 10
# What an attribution is measured in: the calibrated probability's log-odds when the map
# from base score to probability is linear there, else the base model's own score.
LOG_ODDS = "log-odds"
BASE_SCORE = "base score"


def reason_columns(k: int) -> list[str]:
    """The output columns of ``k`` reasons: ``reason_1``, ``reason_1_contribution``, ...

    Parameters
    ----------
    k : int
        Number of reasons, 0 to :data:`MAX_REASONS`.
    """
    return [name for i in range(1, k + 1) for name in (f"reason_{i}", f"reason_{i}_contribution")]


@dataclass(frozen=True)
class Attributions:
    """Per-row, per-feature contributions to a score, and the value they add up from.

    Attributes
    ----------
    features : list of str
        The input features, one per column of ``contributions``.
    contributions : numpy.ndarray of shape (n, len(features))
        What each feature added to each row's score.
    base_value : float
        The score of an average transaction: ``base_value + contributions.sum(axis=1)``
        is each row's score.
    units : str
        ``"log-odds"``: the score is the log-odds of the model's fraud probability;
        ``"base score"``: the uncalibrated model's own score, which the calibration maps
        monotonically to the probability.
    """

    features: list[str]
    contributions: np.ndarray
    base_value: float
    units: str

    @property
    def score(self) -> np.ndarray:
        """Each row's score: the base value plus its contributions."""
        return self.base_value + self.contributions.sum(axis=1)

    def top(self, k: int = 3) -> pd.DataFrame:
        """The ``k`` features that pushed each row's score up most, and by how much.

        Parameters
        ----------
        k : int, default 3
            Reasons per row, 0 to :data:`MAX_REASONS` (capped at the number of features).

        Returns
        -------
        pandas.DataFrame
            Columns :func:`reason_columns` ``(k)``: ``reason_i`` names a feature,
            ``reason_i_contribution`` is its contribution, largest first (negative when
            fewer than ``i`` features raised the score). A tie goes to the feature listed
            first.

        Raises
        ------
        ModelError
            ``k`` is not an integer from 0 to :data:`MAX_REASONS`.
        """
        check_reasons(k)
        n, width = self.contributions.shape
        k_shown = min(k, width)
        # argsort of the negated values, stable: ties in the order the features are listed.
        order = np.argsort(-self.contributions, axis=1, kind="stable")[:, :k_shown]
        names = np.asarray(self.features, dtype=object)[order]
        values = np.take_along_axis(self.contributions, order, axis=1)
        columns: dict[str, Any] = {}
        for i in range(k):
            shown = i < k_shown
            columns[f"reason_{i + 1}"] = names[:, i] if shown else np.full(n, None, dtype=object)
            columns[f"reason_{i + 1}_contribution"] = values[:, i] if shown else np.full(n, np.nan)
        return pd.DataFrame(columns)


def check_reasons(k: Any) -> int:
    """Return ``k`` if it is an integer from 0 to :data:`MAX_REASONS`, else raise.

    Raises
    ------
    ModelError
        ``k`` is not such an integer.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= MAX_REASONS:
        raise ModelError(
            f"reasons must be an integer from 0 to {MAX_REASONS}, got {k!r}; 0 skips the "
            "attributions"
        )
    return int(k)


class ReasonExplainer:
    """Exact additive reasons for a fitted fraudkit model's scores.

    Parameters
    ----------
    model : estimator
        A model from :func:`fraudkit.science.models.train_model`: calibrated or not, on
        logistic regression, gradient boosting or a random forest.
    reference : pandas.DataFrame, optional
        Training transactions: the logistic model's contributions are deviations from
        their mean. Required for logistic regression, unused by the tree models (TreeSHAP
        weighs each branch by the training rows that reached it).
    feature_means : array-like of float, optional
        The logistic model's transformed training means, as :attr:`feature_means` gave
        them; instead of ``reference``, to rebuild an explainer without the data.

    Raises
    ------
    ModelError
        The model is not a fraudkit pipeline of a supported classifier, a logistic model
        comes with neither ``reference`` nor ``feature_means``, or a gradient-boosting
        model splits on categories natively (TreeSHAP in shap reads numeric splits only).
    """

    def __init__(
        self,
        model: Any,
        reference: pd.DataFrame | None = None,
        *,
        feature_means: ArrayLike | None = None,
    ) -> None:
        self.model = model
        self.pipeline = base_model(model)
        blocks = feature_blocks(self.pipeline)
        if blocks is None:
            raise ModelError(
                f"cannot explain a {type(model).__name__}: reasons need a fraudkit model "
                "(fraudkit.science.models.train_model)"
            )
        labels = output_labels(self.pipeline, blocks)
        self.features = list(dict.fromkeys(labels))
        # Sums the transformed columns of each input feature: one matrix product.
        self.grouping = np.zeros((len(labels), len(self.features)))
        self.grouping[np.arange(len(labels)), [self.features.index(x) for x in labels]] = 1.0
        self.classifier = self.pipeline[-1]
        self.transform = self.pipeline[:-1]
        self.feature_means = self._linear_means(reference, feature_means)
        self.tree_explainer = self._tree_explainer()
        # A forest's trees give both classes' shares; fraud's is the second.
        output = 1 if isinstance(self.classifier, RandomForestClassifier) else 0
        self.trees = (
            None
            if self.tree_explainer is None
            else TreeArrays.from_shap(self.tree_explainer, output)
        )
        self.slope, self.intercept, self.units = self._calibration_map()

    def _linear_means(
        self, reference: pd.DataFrame | None, feature_means: ArrayLike | None
    ) -> np.ndarray | None:
        if not isinstance(self.classifier, LogisticRegression):
            return None
        if feature_means is not None:
            means = np.asarray(feature_means, dtype=float)
        elif reference is not None:
            means = np.asarray(self.transform.transform(reference), dtype=float).mean(axis=0)
        else:
            raise ModelError(
                "a logistic model's reasons are deviations from the training mean: pass "
                "reference= (training transactions) or feature_means="
            )
        if means.shape != (self.grouping.shape[0],):
            raise ModelError(
                f"feature_means holds {means.size} values for {self.grouping.shape[0]} model "
                "features; take them from ReasonExplainer(model, reference).feature_means"
            )
        return means

    def _tree_explainer(self) -> Any:
        classifier = self.classifier
        if isinstance(classifier, LogisticRegression):
            return None
        if not isinstance(classifier, HistGradientBoostingClassifier | RandomForestClassifier):
            raise ModelError(
                f"cannot explain a {type(classifier).__name__}: reasons cover logistic "
                "regression, gradient boosting and random forests"
            )
        categorical = getattr(classifier, "is_categorical_", None)
        if categorical is not None and np.any(categorical):
            raise ModelError(
                "cannot explain gradient boosting that splits on categories natively: "
                "shap's TreeSHAP reads numeric splits only; train a logistic regression or "
                "a random forest on this schema for reasons"
            )
        import shap  # imported here: numba's start-up is paid only when trees are explained

        # shap parses the trees and gives the expected value; fraudkit.science.treeshap
        # computes the values on every core (shap's own holds the interpreter lock).
        return shap.TreeExplainer(
            classifier, feature_perturbation="tree_path_dependent", model_output="raw"
        )

    def _calibration_map(self) -> tuple[float, float, str]:
        """``(slope, intercept, units)`` taking the base score to the reported score."""
        model = self.model
        if not isinstance(model, CalibratedClassifierCV):
            # Without calibration the logistic and boosting scores are log-odds already.
            exact = not isinstance(self.classifier, RandomForestClassifier)
            return 1.0, 0.0, LOG_ODDS if exact else BASE_SCORE
        calibrators: Any = model.calibrated_classifiers_
        if model.method != "sigmoid" or len(calibrators) != 1:
            return 1.0, 0.0, BASE_SCORE
        sigmoid = calibrators[0].calibrators[0]
        # scikit-learn's Platt map: p = expit(-(a * score + b)).
        return -float(sigmoid.a_), -float(sigmoid.b_), LOG_ODDS

    def base_scores(self, transformed: np.ndarray) -> np.ndarray:
        """The score the calibration reads: the decision function, or the forest's votes."""
        if hasattr(self.classifier, "decision_function"):
            return np.asarray(self.classifier.decision_function(transformed), dtype=float)
        return np.asarray(self.classifier.predict_proba(transformed), dtype=float)[:, 1]

    def explain(self, df: pd.DataFrame) -> Attributions:
        """Attribute each row's score to the input features.

        Parameters
        ----------
        df : pandas.DataFrame
            Transactions with the columns the model reads.

        Returns
        -------
        Attributions
            Exact: ``base_value + contributions.sum(axis=1)`` equals the score in
            :attr:`units` to floating-point precision.
        """
        # scikit-learn's transforms refuse an empty frame; it has no attributions to give.
        width = self.grouping.shape[0]
        transformed = (
            np.asarray(self.transform.transform(df), dtype=float)
            if len(df)
            else np.empty((0, width))
        )
        if self.feature_means is not None:
            coefficients = self.classifier.coef_.ravel()
            raw = (transformed - self.feature_means) * coefficients
            base = float(self.classifier.intercept_[0] + coefficients @ self.feature_means)
        else:
            assert self.trees is not None  # not a logistic model: the constructor parsed them
            raw = tree_shap(self.trees, transformed)
            base = self.trees.expected
        contributions = (raw @ self.grouping) * self.slope
        return Attributions(
            features=list(self.features),
            contributions=contributions,
            base_value=self.slope * base + self.intercept,
            units=self.units,
        )

    def reasons(self, df: pd.DataFrame, k: int = 3) -> pd.DataFrame:
        """The ``k`` features that raised each row's score most (:meth:`Attributions.top`)."""
        check_reasons(k)
        if k == 0:
            return pd.DataFrame(index=pd.RangeIndex(len(df)))
        return self.explain(df).top(k)

    def expected_score(self, df: pd.DataFrame) -> np.ndarray:
        """The model's own score in :attr:`units`, computed without attributions.

        In log-odds it is ``logit`` of the model's fraud probability; a test of
        additivity compares :attr:`Attributions.score` with it. Within about 1e-9 of 0
        or 1 the probability no longer holds its log-odds to 1e-6 in float64 (a forest's
        surest rows reach log-odds of 40): compare those rows as probabilities.
        """
        if self.units == LOG_ODDS and isinstance(self.model, CalibratedClassifierCV):
            return logit(self.model.predict_proba(df)[:, 1])
        transformed = np.asarray(self.transform.transform(df), dtype=float)
        return self.slope * self.base_scores(transformed) + self.intercept
