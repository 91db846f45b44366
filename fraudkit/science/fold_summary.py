"""What the folds of prequential validation say: each model's spread, and which is best.

:func:`fraudkit.science.prequential.run_prequential` scores every model type on the same
rolling folds; :class:`PrequentialResult` holds those fold values and reads them:

* per model, the mean and standard deviation over the folds of AUPRC and Card
  Precision@k, and a prediction interval for the **next** period's value,
  ``mean +- t(n - 1, (1 + c) / 2) * sd * sqrt(1 + 1 / n)`` over ``n`` folds
  (:func:`prediction_interval`): the interval a new draw from the folds' distribution falls
  in with probability ``c`` (normal values, exchangeable folds);
* the ranking by fold mean, and the best model against each other one fold by fold: a
  paired t-test, and Wilcoxon's signed-rank test from :data:`MIN_WILCOXON_FOLDS` folds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from fraudkit.core.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "METRICS",
    "MIN_WILCOXON_FOLDS",
    "PrequentialResult",
    "prediction_interval",
]

# The fold metrics: AUPRC and the daily Card Precision@k's mean over the test block.
METRICS: tuple[str, ...] = ("average_precision", "card_precision_at_k")
# The next period's value falls in the interval 9 times out of 10 (for normal fold values).
DEFAULT_CONFIDENCE = 0.9
# Below 6 pairs, Wilcoxon's signed-rank test cannot reach p < 0.05 two-sided (its smallest
# p-value on 5 pairs is 2 / 2**5 = 0.0625): reporting it would only look like evidence.
MIN_WILCOXON_FOLDS = 6
# What paired_tests reports of each comparison, after the best model and the metric.
_PAIRED_COLUMNS = ["n_folds", "mean_difference", "sd_difference", "t_statistic", "t_p_value",
                   "wilcoxon_p_value", "note"]  # fmt: skip


def prediction_interval(values: ArrayLike, confidence: float) -> tuple[float, float]:
    """Interval for one more draw from the distribution of ``values`` (normal theory).

    ``mean +- t(n - 1, (1 + confidence) / 2) * sd * sqrt(1 + 1 / n)``: the next value lies
    in it with probability ``confidence`` when the values are independent draws from one
    normal distribution (wider than a confidence interval of the mean, which would shrink
    as folds are added while the next period's own noise does not).

    Parameters
    ----------
    values : array-like of float
        The fold values; NaN ones are left out.
    confidence : float
        Probability that the next value lies in the interval.

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN with fewer than two finite values.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    n = finite.size
    if n < 2:
        return math.nan, math.nan
    mean, sd = float(finite.mean()), float(finite.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


@dataclass(frozen=True, eq=False)
class PrequentialResult:
    """The folds' metrics of every model type, and what they say about the models.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per model and fold: ``model``, ``fold``, the day ranges
        (``train_first_day``, ``train_end_day``, ``test_first_day``, ``test_end_day``, end
        days excluded), ``test_start`` / ``test_end`` (first and last test transaction),
        ``n_train``, ``n_test``, ``n_fraud``, ``n_fraud_cards``, ``average_precision``,
        ``card_precision_at_k`` and ``fit_seconds``.
    train_days, test_days, gap_days, k : int
        The design.
    confidence : float
        Of the prediction intervals.
    rank_by : str
        The metric whose fold mean ranks the models.
    """

    folds: pd.DataFrame
    train_days: int
    test_days: int
    gap_days: int
    k: int = 100
    confidence: float = DEFAULT_CONFIDENCE
    rank_by: str = "average_precision"

    @property
    def n_folds(self) -> int:
        """How many folds each model was scored on."""
        return int(self.folds["fold"].nunique()) if len(self.folds) else 0

    @property
    def best_model(self) -> str:
        """The model type of the highest fold mean of :attr:`rank_by`."""
        return str(self.summary().index[0])

    def summary(self) -> pd.DataFrame:
        """Per model: ``n_folds`` and, per metric, ``<metric>_mean``, ``_std`` and the
        prediction interval for the next period, ``_low`` and ``_high`` (cut to [0, 1]);
        best fold mean of :attr:`rank_by` first.

        Folds whose metric is undefined (AUPRC of a test block without fraud) are left
        out of that metric's figures.
        """
        rows = {}
        for model, group in self.folds.groupby("model", sort=False):
            rows[model] = {"n_folds": len(group)}
            for metric in METRICS:
                figures = _fold_figures(group[metric].to_numpy(dtype=float), self.confidence)
                rows[model] |= {f"{metric}_{name}": value for name, value in figures.items()}
        table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
        return table.sort_values(f"{self.rank_by}_mean", ascending=False, kind="stable")

    def paired_tests(self, metric: str | None = None) -> pd.DataFrame:
        """The best model against each other one, fold by fold, on ``metric``.

        Paired t-test (:func:`scipy.stats.ttest_rel`) on the folds both were scored on,
        and Wilcoxon's signed-rank test with at least :data:`MIN_WILCOXON_FOLDS` folds
        (with fewer it cannot reach p < 0.05; ``note`` says so).

        Parameters
        ----------
        metric : str, optional
            One of :data:`METRICS`; default :attr:`rank_by`.

        Returns
        -------
        pandas.DataFrame
            One row per other model (index ``model``): ``best``, ``metric``, ``n_folds``,
            ``mean_difference`` (best minus it), ``sd_difference``, ``t_statistic``,
            ``t_p_value``, ``wilcoxon_p_value`` and ``note``; empty for a single model.

        Raises
        ------
        ConfigurationError
            ``metric`` is not one of :data:`METRICS`.
        """
        metric = metric or self.rank_by
        if metric not in METRICS:
            raise ConfigurationError(f"metric = {metric!r}; choose one of {', '.join(METRICS)}")
        wide = self.folds.pivot(index="fold", columns="model", values=metric)
        # In the folds' order, as summary() ranks them: the same best on a tie.
        means = wide[self.folds["model"].unique()].mean()
        ranked = means.sort_values(ascending=False, kind="stable")
        best = str(ranked.index[0])
        rows = {str(other): _paired(wide[best], wide[other]) for other in ranked.index[1:]}
        table = pd.DataFrame.from_dict(rows, orient="index", columns=_PAIRED_COLUMNS)
        table.insert(0, "metric", metric)
        table.insert(0, "best", best)
        return table.rename_axis("model")

    def metrics(self) -> dict[str, float]:
        """Flat, MLflow-ready numbers: ``prequential_<model>_<metric>_<mean|std|low|high>``
        per model and metric, ``prequential_<model>_paired_p_value`` (t-test of the best
        against it on :attr:`rank_by`) per other model, and ``prequential_n_folds``."""
        flat: dict[str, float] = {"prequential_n_folds": float(self.n_folds)}
        for model, row in self.summary().iterrows():
            for metric in METRICS:
                for stat in ("mean", "std", "low", "high"):
                    flat[f"prequential_{model}_{metric}_{stat}"] = float(row[f"{metric}_{stat}"])
        for model, row in self.paired_tests().iterrows():
            flat[f"prequential_{model}_paired_p_value"] = float(row["t_p_value"])
        return flat

    def to_dict(self) -> dict[str, Any]:
        """The design, the best model and :meth:`metrics`, as flat plain values."""
        return {
            "prequential_train_days": self.train_days,
            "prequential_test_days": self.test_days,
            "prequential_gap_days": self.gap_days,
            "prequential_k": self.k,
            "prequential_confidence": self.confidence,
            "prequential_rank_by": self.rank_by,
            "prequential_best_model": self.best_model,
            **self.metrics(),
        }


def _fold_figures(values: np.ndarray, confidence: float) -> dict[str, float]:
    """Mean, sd and prediction interval (cut to [0, 1]) of a metric's finite fold values."""
    finite = values[np.isfinite(values)]
    low, high = prediction_interval(finite, confidence)
    return {
        "mean": float(finite.mean()) if finite.size else math.nan,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        "low": max(low, 0.0) if math.isfinite(low) else low,
        "high": min(high, 1.0) if math.isfinite(high) else high,
    }


def _paired(best: pd.Series, other: pd.Series) -> dict[str, Any]:
    """Paired t and Wilcoxon tests of ``best - other`` over the folds both have."""
    both = pd.concat([best, other], axis=1).dropna().to_numpy(dtype=float)
    difference = both[:, 0] - both[:, 1]
    n = difference.size
    result: dict[str, Any] = {
        "n_folds": n,
        "mean_difference": float(difference.mean()) if n else math.nan,
        "sd_difference": float(difference.std(ddof=1)) if n > 1 else math.nan,
        "t_statistic": math.nan,
        "t_p_value": math.nan,
        "wilcoxon_p_value": math.nan,
        "note": "",
    }
    if n < 2:
        return result | {"note": f"{n} paired fold(s): no test; pass more folds"}
    if not np.any(difference):
        same = {"t_statistic": 0.0, "t_p_value": 1.0, "wilcoxon_p_value": 1.0}
        return result | same | {"note": "identical on every fold"}
    if result["sd_difference"] == 0:  # the same non-zero difference on every fold
        t_statistic, t_p = math.copysign(math.inf, result["mean_difference"]), 0.0
    else:
        test = stats.ttest_rel(both[:, 0], both[:, 1])
        t_statistic, t_p = float(test.statistic), float(test.pvalue)  # pyright: ignore
    result |= {"t_statistic": t_statistic, "t_p_value": t_p}
    if n < MIN_WILCOXON_FOLDS:
        return result | {
            "note": f"Wilcoxon left out: {n} folds < {MIN_WILCOXON_FOLDS}, too few to reach "
            "p < 0.05 whatever the differences"
        }
    with warnings.catch_warnings():  # tied or zero differences: scipy says it approximates
        warnings.simplefilter("ignore", UserWarning)
        wilcoxon = stats.wilcoxon(both[:, 0], both[:, 1])
    return result | {"wilcoxon_p_value": float(wilcoxon.pvalue)}  # pyright: ignore
