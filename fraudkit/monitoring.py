"""Data drift, prediction drift, windowed performance and retraining alerts.

A monitoring window is a batch of recent transactions compared with a reference batch: the
model's test period (transactions it never trained on), kept with the model version at
training time together with the model's scores on it. Against a sample of its own training
data a model looks drifted on new traffic: it scores the rows it learnt from more
confidently. Three signals come out of a window:

- data drift: every feature of the window against the reference, by a two-sample test;
- prediction drift: the model's scores on the window against those on the reference (shape
  of the distribution, and their mean, the expected fraud rate, where a fraud wave shows);
- performance: a label-free estimate from the scores for every window, and realised
  metrics once labels have arrived (fraud labels arrive days or weeks after the
  transaction), which then judge the window.

False alarms
------------
:func:`detect_drift` tests 29 features per window. Testing each at ``alpha`` would raise a
dataset alarm on 1 - 0.95**29 ≈ 77 % of undrifted windows. The p-values are therefore
adjusted across features (Benjamini-Hochberg by default, Holm on request) and the dataset
drifts when any adjusted p-value is at most ``alpha``. When no feature drifts, either
procedure raises an alarm with probability at most ``alpha`` (Holm under any dependence
between features, Benjamini-Hochberg under independence or positive dependence), so
``alpha`` is the dataset-level false-alarm rate. Benjamini-Hochberg has more power when
several features drift together, and among the features it flags it keeps the expected
share of wrongly flagged ones at most ``alpha``.

Each test compares two samples and allows for the noise of both, so ``alpha`` is its
false-alarm rate on average over references. Once a reference is fixed, the rate on the
windows after it is conditional on that one sample, and fraud makes it vary: a 30,000-row
reference should hold about 52 frauds, give or take 7. The test period of the training
notebook's default run (seed 0) holds 87; ordinary traffic then carries 40 % fewer expected
frauds than the reference, and prediction drift fires on about half of the undrifted
windows, where the same recipe with training seeds 2-5 stays at 6-7 %
(``benchmarks/bench_drift.py``). A longer reference narrows the spread.

Prediction drift
----------------
The KS test on the scores sees a change of shape; Welch's test of their means sees a change
in the expected fraud count, which a fraud wave moves while changing a few tenths of a
percent of the scores. The mean replaced Fisher's test of the alert count: it weighs every
score instead of counting those past the threshold, and over ten references detected
``new_fraud_pattern`` 1.2 to 1.7 times as often, at the same false-alarm rate.

Label-free estimates
--------------------
:func:`estimate_performance` reads calibrated scores as fraud probabilities and averages
metrics over label sets drawn from them (NannyML's CBPE does so for ROC AUC and
confusion-matrix metrics; this adds AUPRC). Its intervals hold the label noise of the
window, not the error of the calibration map, so both rest on that map. With a map
fitted on 1,000,000 labelled rows the estimates of AUPRC, precision and recall are off by
0.01 or less on average and the 90 % intervals hold 90-97 % of the realised values; with
the two-parameter sigmoid fitted on the ~60 frauds of a validation period, scores of
0.6-0.9 turn out 94 % fraud and AUPRC and recall come out up to 0.09 low
(``benchmarks/bench_estimation.py``).

The map fails under drift, so the estimate carries a ``reliable`` flag: false when the
window's features or scores drifted (false-alarm rate at most ``2 * alpha``), and once
labels arrive, when the fraud count contradicts the scores (exact Poisson-binomial test at
``alpha``). A new fraud pattern at the real fraud rate is the hard case: about 21 new
frauds in a 25,000-row window, scored as legitimate and far out only on features the
model never used. The expected fraud count falls by a third, about two standard
deviations of its noise, so the label-free flag catches about half of those windows; the
fraud-count check raises that to 90-100 % once labels are in. Outlier tests on the
features do no better: even the simulator's exact legitimate density, as an outlier score,
finds at most a fifth of them.

Performance rule
----------------
A drop of the chosen metric alerts when it exceeds ``tolerance`` relative to the baseline
*and* is significant: a one-sided z-test at ``alpha`` with the binomial standard error
``sqrt(m (1 - m) / n)`` on each side, ``n`` being the frauds a metric rests on (the alerts
for precision, the rows for accuracy; for average precision this is the interval of Boyd
et al., 2013). A baseline measured on 50 frauds is itself uncertain by about +-0.06.

Large windows
-------------
A test asks "are the two distributions identical?", and with 100,000 rows a side the answer
is nearly always "no": the KS test then flags a mean shift of 0.02 standard deviations,
which no model notices. ``min_effect`` adds a practical-significance guard: a feature drifts
only when it is significant *and* its KS distance (largest gap between the two empirical
CDFs; about 0.4 times a mean shift in standard deviations for a normal feature) reaches
``min_effect``. ``method="psi"`` and ``method="wasserstein"`` compare an effect size with a
conventional cut-off instead, which does not grow more sensitive with the sample size but
carries no false-alarm guarantee; PSI at its usual 0.2 misses a shift of a quarter of a
standard deviation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fraudkit.data import AMOUNT_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from fraudkit.exceptions import ConfigurationError, DataValidationError, SmallSampleWarning
from fraudkit.metrics import evaluate, few_frauds_message, validate_labels_and_scores
from fraudkit.models import predict_scores

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DRIFT_METHODS",
    "MIN_ROWS",
    "DriftReport",
    "MonitoringAlert",
    "PredictionDriftResult",
    "WindowReport",
    "detect_drift",
    "detect_prediction_drift",
    "estimate_performance",
    "evaluate_alerts",
    "monitor_window",
    "summarise_alerts",
]

DRIFT_METHODS: tuple[str, ...] = ("auto", "psi", "wasserstein")
# Conventional cut-offs of the effect-size methods: PSI 0.2 is the credit-scoring rule of
# thumb for a "significant shift"; 0.1 reference standard deviations for Wasserstein.
DEFAULT_THRESHOLDS: dict[str, float] = {"psi": 0.2, "wasserstein": 0.1}
MIN_ROWS = 30
_CORRECTIONS: dict[str, str] = {"bh": "fdr_bh", "holm": "holm"}
# Columns with at most this many distinct values are compared as categories (chi-square):
# the KS null distribution assumes continuous data and is very conservative under many ties.
_MAX_CATEGORIES = 20
# The chi-square approximation wants expected counts of about 5 or more per cell.
_MIN_EXPECTED = 5.0
# Above this many rows a side, the asymptotic KS p-value is within 3 % (relative) of the
# exact one, which costs ~6 ms a feature at 10,000 rows: too slow for 29 features.
_EXACT_KS_MAX_ROWS = 5_000
_PSI_BINS = 10
# Share given to an empty PSI bin, so that its log term stays finite.
_PSI_FLOOR = 1e-4
_FEATURE_TABLE_COLUMNS = [
    *("feature", "test", "statistic", "p_value", "p_value_adjusted", "effect", "threshold"),
    "drifted",
]
# Uniform draws held in memory at once by the label simulation (8 bytes each).
_MAX_DRAW_CELLS = 4_000_000
# Scores below this join a single Poisson count in the exact fraud-count test.
_POISSON_BELOW = 1e-3
_COUNT_BLOCK = 16
# The count a metric is a share of, for its binomial standard error in the performance
# test: precision is a share of the alerts, accuracy of all rows; the rest (recall, average
# precision, ROC AUC, F1) rest on the frauds.
_EVIDENCE = {"fraud_precision": "n_alerts", "accuracy": "n_transactions"}
_UNTESTABLE = {
    TIME_COLUMN: "the clock moves between any two windows, so it always drifts",
    LABEL_COLUMN: "it is the label; a change in the fraud rate shows in the realised "
    "metrics and in the model's alert rate (prediction drift)",
}


# --------------------------------------------------------------------------- validation


def _check_fraction(name: str, value: float, *, closed: bool = False) -> None:
    """Raise unless ``0 < value < 1`` (``0 <= value <= 1`` when ``closed``)."""
    inside = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not inside:
        bounds = "[0, 1]" if closed else "(0, 1)"
        raise ConfigurationError(f"{name} must lie in {bounds}, got {value!r}")


def _check_frame(name: str, frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) < MIN_ROWS:
        raise DataValidationError(
            f"{name} has {len(frame)} rows but drift tests need at least {MIN_ROWS}; "
            "use a longer window"
        )


def _resolve_features(
    reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str] | None
) -> list[str]:
    """Return the columns to test: ``features``, or the model features both frames hold."""
    if features is None:
        found = [c for c in FEATURE_COLUMNS if c in reference.columns and c in current.columns]
        if not found:
            raise DataValidationError(
                "reference and current share none of the feature columns V1..V28, Amount; "
                "pass features=[...] naming the columns to test"
            )
        return found
    chosen = list(dict.fromkeys([features] if isinstance(features, str) else features))
    if not chosen:
        raise DataValidationError(
            "features is empty; pass None to test V1..V28 and Amount, or name the columns"
        )
    for column in chosen:
        if column in _UNTESTABLE:
            raise DataValidationError(
                f"column {column!r} is not drift-tested: {_UNTESTABLE[column]}; "
                "remove it from features"
            )
        for name, frame in (("reference", reference), ("current", current)):
            if column not in frame.columns:
                raise DataValidationError(
                    f"feature {column!r} is not a column of {name}; "
                    f"its columns are {list(map(str, frame.columns))}"
                )
    return chosen


def _column(name: str, frame: pd.DataFrame, column: str) -> np.ndarray:
    """Return ``frame[column]`` as finite floats, or raise DataValidationError."""
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series):
        raise DataValidationError(
            f"feature {column!r} of {name} has dtype {series.dtype}; drift tests need numeric "
            "columns, so encode it as numbers or leave it out of features"
        )
    values = series.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            f"feature {column!r} of {name} has {int(bad.sum())} missing or infinite values "
            f"(first at index {series.index[np.argmax(bad)]!r}); impute or drop those rows"
        )
    return values


def _scores(name: str, values: ArrayLike, *, probabilities: bool = False) -> np.ndarray:
    """Return ``values`` as a 1-D float array of finite scores, or raise DataValidationError."""
    try:
        scores = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise DataValidationError(f"{name} must be numeric scores: {error}") from None
    if scores.size < MIN_ROWS:
        raise DataValidationError(
            f"{name} has {scores.size} scores but at least {MIN_ROWS} are needed; "
            "use a longer window"
        )
    bad = ~np.isfinite(scores)
    if probabilities:
        bad |= (scores < 0) | (scores > 1)
    if bad.any():
        row = int(np.argmax(bad))
        requirement = "probabilities in [0, 1]" if probabilities else "finite"
        raise DataValidationError(
            f"{name} must be {requirement}; row {row} is {scores[row]!r} "
            f"({int(bad.sum())} bad rows)"
        )
    return scores


# --------------------------------------------------------------------------- statistics


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index over ten quantile bins of ``reference``."""
    # Tied quantiles (few-valued columns, scores piled at 0) merge into one bin.
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, _PSI_BINS + 1)[1:-1]))
    ref_share, cur_share = (
        np.maximum(
            np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1) / x.size,
            _PSI_FLOOR,
        )
        for x in (reference, current)
    )
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _cdf_gaps(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sorted values and the gap between the two empirical CDFs at each of them."""
    pooled = np.concatenate([reference, current])
    order = np.argsort(pooled, kind="stable")
    from_reference = order < reference.size
    gaps = np.cumsum(from_reference) / reference.size - np.cumsum(~from_reference) / current.size
    return pooled[order], gaps


def _ks_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest gap between the two empirical CDFs (the KS statistic)."""
    values, gaps = _cdf_gaps(reference, current)
    # Inside a run of tied values the gap is not yet a CDF value: read it where the run ends.
    run_ends = np.append(values[1:] != values[:-1], True)
    return float(np.abs(gaps[run_ends]).max())


def _normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein-1 distance (area between the CDFs) in reference standard deviations."""
    values, gaps = _cdf_gaps(reference, current)
    distance = float(np.sum(np.abs(gaps[:-1]) * np.diff(values)))
    scale = reference.std()
    # A constant reference has no spread to normalise by; the distance stays in raw units.
    return distance / scale if scale > 0 else distance


def _chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of a few-valued column; returns (statistic, p-value)."""
    values, codes = np.unique(np.concatenate([reference, current]), return_inverse=True)
    table = np.stack(
        [
            np.bincount(codes[: reference.size], minlength=values.size),
            np.bincount(codes[reference.size :], minlength=values.size),
        ]
    )
    expected_min = table.sum(axis=0) * table.sum(axis=1).min() / table.sum()
    rare = expected_min < _MIN_EXPECTED
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _feature_test(
    reference: np.ndarray, current: np.ndarray, method: str
) -> tuple[str, float, float, float]:
    """Return (test, statistic, p-value, KS distance) for one feature."""
    if method == "psi":
        return "psi", _psi(reference, current), np.nan, _ks_distance(reference, current)
    if method == "wasserstein":
        statistic = _normalised_wasserstein(reference, current)
        return "wasserstein", statistic, np.nan, _ks_distance(reference, current)
    if np.unique(np.concatenate([reference, current])).size <= _MAX_CATEGORIES:
        statistic, p_value = _chi_square(reference, current)
        return "chi2", statistic, p_value, _ks_distance(reference, current)
    exact = max(reference.size, current.size) <= _EXACT_KS_MAX_ROWS
    result = stats.ks_2samp(reference, current, method="exact" if exact else "asymp")
    return "ks", float(result.statistic), float(result.pvalue), float(result.statistic)


# --------------------------------------------------------------------------- data drift


@dataclass(frozen=True, eq=False)
class DriftReport:
    """Per-feature drift tests of one window against the reference.

    Attributes
    ----------
    dataset_drift : bool
        At least one feature drifted (after the multiple-testing correction for ``auto``).
    share_drifted : float
        Drifted features / tested features.
    n_drifted : int
        Number of drifted features.
    alpha : float
        Dataset-level false-alarm rate (``auto``).
    method : str
        ``"auto"``, ``"psi"`` or ``"wasserstein"``.
    correction : str
        ``"bh"`` (Benjamini-Hochberg) or ``"holm"``; used by ``auto`` only.
    min_effect : float or None
        Minimum KS distance for a feature to count as drifted.
    n_reference, n_current : int
        Rows of the reference and of the window.
    features : pandas.DataFrame
        One row per tested feature: ``feature``, ``test`` (``ks``, ``chi2``, ``psi`` or
        ``wasserstein``), ``statistic``, ``p_value`` and ``p_value_adjusted`` (NaN for the
        score-only tests psi and wasserstein), ``effect`` (KS distance, for every test),
        ``threshold`` (what the decision compares with: ``alpha`` for the adjusted p-value
        of ks/chi2, the cut-off of the statistic for psi/wasserstein) and ``drifted``.
    """

    dataset_drift: bool
    share_drifted: float
    n_drifted: int
    alpha: float
    method: str
    correction: str
    min_effect: float | None
    n_reference: int
    n_current: int
    features: pd.DataFrame

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, in test order."""
        return self.features.loc[self.features["drifted"], "feature"].tolist()

    def to_dict(self) -> dict[str, float]:
        """Flat numeric summary for ``log_metrics``."""
        return {
            "data_drift": int(self.dataset_drift),
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_features_tested": len(self.features),
            "max_feature_ks": float(self.features["effect"].max()),
        }


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    alpha: float = 0.05,
    method: str = "auto",
    correction: str = "bh",
    threshold: float | None = None,
    min_effect: float | None = None,
) -> DriftReport:
    """Test every feature of ``current`` against ``reference`` for a change of distribution.

    Parameters
    ----------
    reference : pandas.DataFrame
        Transactions the model was accepted on (at least ``MIN_ROWS`` rows).
    current : pandas.DataFrame
        The monitoring window (at least ``MIN_ROWS`` rows).
    features : sequence of str, optional
        Numeric columns to test. Default: those of V1..V28 and Amount present in both
        frames. ``Time`` (always moves) and ``Class`` (the label) are never tested.
    alpha : float, default 0.05
        Dataset-level false-alarm rate of ``method="auto"``.
    method : {"auto", "psi", "wasserstein"}, default "auto"
        ``auto``: two-sample Kolmogorov-Smirnov test per continuous feature, chi-square
        test of homogeneity for columns with at most 20 distinct values, p-values adjusted
        across features by ``correction``. ``psi``: population stability index over ten
        quantile bins of the reference, drifted above ``threshold`` (default 0.2).
        ``wasserstein``: Wasserstein-1 distance divided by the reference standard
        deviation, drifted above ``threshold`` (default 0.1).
    correction : {"bh", "holm"}, default "bh"
        Multiple-testing correction of ``auto``: Benjamini-Hochberg or Holm.
    threshold : float, optional
        Cut-off of the ``psi`` or ``wasserstein`` statistic (not used by ``auto``).
    min_effect : float, optional
        Guard against significant but irrelevant shifts in large windows: a feature drifts
        only when its KS distance is at least ``min_effect`` as well (see module notes).

    Returns
    -------
    DriftReport

    Raises
    ------
    DataValidationError
        When a frame is not a DataFrame or has fewer than ``MIN_ROWS`` rows, a feature is
        missing, non-numeric, non-finite, ``Time`` or ``Class``.
    ConfigurationError
        When ``method``, ``correction``, ``alpha``, ``threshold`` or ``min_effect`` is
        invalid.
    """
    _check_fraction("alpha", alpha)
    if method not in DRIFT_METHODS:
        raise ConfigurationError(f"unknown drift method {method!r}; choose one of {DRIFT_METHODS}")
    if correction not in _CORRECTIONS:
        raise ConfigurationError(
            f"unknown correction {correction!r}; choose one of {tuple(_CORRECTIONS)}"
        )
    if method == "auto" and threshold is not None:
        raise ConfigurationError(
            "threshold applies to method='psi' or 'wasserstein'; 'auto' decides by alpha"
        )
    cutoff = DEFAULT_THRESHOLDS.get(method) if threshold is None else threshold
    if cutoff is not None and cutoff <= 0:
        raise ConfigurationError(f"threshold must be positive, got {cutoff!r}")
    if min_effect is not None:
        _check_fraction("min_effect", min_effect, closed=True)
    _check_frame("reference", reference)
    _check_frame("current", current)
    columns = _resolve_features(reference, current, features)

    results = []
    for column in columns:
        pair = (_column("reference", reference, column), _column("current", current, column))
        results.append(_feature_test(*pair, method))
    table = pd.DataFrame(results, columns=["test", "statistic", "p_value", "effect"])
    table.insert(0, "feature", columns)
    if method == "auto":
        table["p_value_adjusted"] = multipletests(
            table["p_value"], alpha=alpha, method=_CORRECTIONS[correction]
        )[1]
        table["threshold"] = alpha
        drifted = table["p_value_adjusted"] <= alpha
    else:
        table["p_value_adjusted"] = np.nan
        table["threshold"] = cutoff
        drifted = table["statistic"] > cutoff
    if min_effect is not None:
        drifted &= table["effect"] >= min_effect
    table["drifted"] = drifted.astype(bool)
    table = table[_FEATURE_TABLE_COLUMNS]
    n_drifted = int(table["drifted"].sum())
    return DriftReport(
        dataset_drift=n_drifted > 0,
        share_drifted=n_drifted / len(table),
        n_drifted=n_drifted,
        alpha=alpha,
        method=method,
        correction=correction,
        min_effect=min_effect,
        n_reference=len(reference),
        n_current=len(current),
        features=table,
    )


# --------------------------------------------------------------------------- prediction drift


@dataclass(frozen=True)
class PredictionDriftResult:
    """Change of the model's scores between the reference and a window.

    Attributes
    ----------
    drifted : bool
        The KS test or the mean-score test is significant, each at ``alpha / 2``
        (Bonferroni), so that an undrifted window alarms with probability at most ``alpha``.
    ks_statistic, ks_p_value : float
        Two-sample Kolmogorov-Smirnov test on the scores: any change of shape.
    mean_p_value : float
        Welch's test of equal mean scores. For calibrated scores the mean is the expected
        fraud rate: a fraud wave, or fraud the model no longer recognises, moves a few tenths
        of a percent of the scores, too few for KS, but it moves the expected fraud count.
    alert_rate_reference, alert_rate_current : float
        Share of scores at or above ``threshold``.
    psi : float
        Population stability index of the scores (ten reference quantile bins).
    mean_ratio : float
        Mean window score / mean reference score; for calibrated scores, the ratio of the
        expected fraud rates. NaN when the reference mean is 0.
    alpha, threshold : float
    n_reference, n_current : int
    """

    drifted: bool
    ks_statistic: float
    ks_p_value: float
    mean_p_value: float
    alert_rate_reference: float
    alert_rate_current: float
    psi: float
    mean_ratio: float
    alpha: float
    threshold: float
    n_reference: int
    n_current: int

    def to_dict(self) -> dict[str, float]:
        """Flat numeric summary for ``log_metrics``."""
        return {
            "prediction_drift": int(self.drifted),
            "prediction_ks": self.ks_statistic,
            "prediction_ks_p_value": self.ks_p_value,
            "prediction_mean_p_value": self.mean_p_value,
            "prediction_alert_rate": self.alert_rate_current,
            "prediction_psi": self.psi,
            "prediction_mean_ratio": self.mean_ratio,
        }


def detect_prediction_drift(
    reference_scores: ArrayLike,
    current_scores: ArrayLike,
    *,
    alpha: float = 0.05,
    threshold: float = 0.5,
) -> PredictionDriftResult:
    """Compare the model's scores on a window with its scores on the reference.

    Two tests, each at ``alpha / 2``: the two-sample KS test catches a change in the shape
    of the score distribution (covariate shift the model reacts to); Welch's test of equal
    means catches a change in the expected fraud count (a fraud wave, a new fraud pattern
    the model half recognises), which moves too few scores for KS to notice. The alert
    rates, PSI and the mean score ratio are reported as effect sizes.

    Parameters
    ----------
    reference_scores, current_scores : array-like of shape (n,)
        Finite model scores (at least ``MIN_ROWS`` each).
    alpha : float, default 0.05
        False-alarm rate of the combined decision.
    threshold : float, default 0.5
        The model's operating threshold: ``score >= threshold`` raises an alert.

    Returns
    -------
    PredictionDriftResult
    """
    _check_fraction("alpha", alpha)
    reference = _scores("reference_scores", reference_scores)
    current = _scores("current_scores", current_scores)
    ks = stats.ks_2samp(reference, current)
    spread = reference.var() / reference.size + current.var() / current.size
    # Constant scores on both sides leave Welch's statistic undefined: equal or not.
    mean_p_value = (
        float(stats.ttest_ind(current, reference, equal_var=False).pvalue)
        if spread > 0
        else float(current.mean() == reference.mean())
    )
    reference_mean = reference.mean()
    return PredictionDriftResult(
        drifted=min(float(ks.pvalue), mean_p_value) <= alpha / 2,
        ks_statistic=float(ks.statistic),
        ks_p_value=float(ks.pvalue),
        mean_p_value=mean_p_value,
        alert_rate_reference=float(np.mean(reference >= threshold)),
        alert_rate_current=float(np.mean(current >= threshold)),
        psi=_psi(reference, current),
        mean_ratio=float(current.mean() / reference_mean) if reference_mean else np.nan,
        alpha=alpha,
        threshold=float(threshold),
        n_reference=reference.size,
        n_current=current.size,
    )


# --------------------------------------------------------------------------- performance


def _label_draws(
    probabilities: np.ndarray, threshold: float, n_samples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Metrics of ``n_samples`` label sets drawn as independent ``Bernoulli(probabilities)``.

    Returns one array per metric of :func:`fraudkit.metrics.evaluate` (scikit-learn's
    definitions, ties included), NaN where a draw leaves it undefined (no fraud). The
    metrics come from the positions of the drawn frauds in score order, for all draws at
    once, instead of a pass over every row of every draw.
    """
    n = probabilities.size
    order = np.argsort(-probabilities, kind="stable")
    by_rank = probabilities[order]
    # Average precision has one threshold per distinct score: where each run of ties ends.
    run_ends = np.flatnonzero(np.append(by_rank[1:] != by_rank[:-1], True))
    run_end = np.repeat(run_ends, np.diff(np.append(-1, run_ends)))
    ascending_rank = stats.rankdata(probabilities)[order]  # tied ranks, as ROC AUC counts them
    n_alerts = int(np.sum(by_rank >= threshold))  # the alerts are the top of the order
    draws, positions = [], []
    block = max(1, _MAX_DRAW_CELLS // n)  # bounds the memory of the uniform draws
    for start in range(0, n_samples, block):
        drawn, position = np.nonzero(rng.random((min(block, n_samples - start), n)) < by_rank)
        draws.append(drawn + start)
        positions.append(position)
    draw, position = np.concatenate(draws), np.concatenate(positions)
    n_fraud = np.bincount(draw, minlength=n_samples).astype(float)
    caught = np.bincount(draw, weights=position < n_alerts, minlength=n_samples)
    # Frauds of the same draw scoring at or above each fraud's threshold: draws are sorted
    # by (draw, position), so a search on the pair counts them.
    key = draw * n + position
    first = np.concatenate([[0], np.cumsum(n_fraud)[:-1]])
    end = run_end[position]
    above = np.searchsorted(key, draw * n + end, side="right") - first[draw]
    with np.errstate(divide="ignore", invalid="ignore"):
        ap_sum = np.bincount(draw, weights=above / (end + 1), minlength=n_samples)
        rank_sum = np.bincount(draw, weights=ascending_rank[position], minlength=n_samples)
        has_fraud = n_fraud > 0
        return {
            "accuracy": (n - n_alerts - n_fraud + 2 * caught) / n,
            "average_precision": np.where(has_fraud, ap_sum / n_fraud, np.nan),
            "roc_auc": np.where(
                has_fraud & (n_fraud < n),
                (rank_sum - n_fraud * (n_fraud + 1) / 2) / (n_fraud * (n - n_fraud)),
                np.nan,
            ),
            "fraud_precision": caught / n_alerts if n_alerts else np.zeros(n_samples),
            "fraud_recall": np.where(has_fraud, caught / n_fraud, np.nan),
            "fraud_f1": np.where(has_fraud, 2 * caught / (n_alerts + n_fraud), np.nan),
            "n_fraud": n_fraud,
            "fraud_rate": n_fraud / n,
        }


def _fraud_count_p_value(probabilities: np.ndarray, n_fraud: int) -> float:
    """Two-sided exact p-value of ``n_fraud`` frauds when each row is fraud with its score.

    The count is Poisson-binomial. Rows below ``_POISSON_BELOW`` are pooled into one Poisson
    count (Le Cam: off in total variation by at most the sum of their squared scores, which
    is below 0.001 times their expected count); the others are convolved in exactly.
    """
    small = probabilities < _POISSON_BELOW
    expected = float(probabilities.sum())
    size = int(max(n_fraud, expected + 10 * np.sqrt(expected) + 10)) + 2
    pmf = stats.poisson.pmf(np.arange(size), probabilities[small].sum())
    # The count of each block of _COUNT_BLOCK rows, built for all blocks at once, is a short
    # polynomial to convolve in: a loop over blocks rather than over thousands of rows.
    big = probabilities[~small]
    rows = np.zeros((-(-big.size // _COUNT_BLOCK), _COUNT_BLOCK))  # padded with p = 0
    rows.flat[: big.size] = big
    blocks = np.zeros((rows.shape[0], _COUNT_BLOCK + 1))
    blocks[:, 0] = 1.0
    for p in rows.T[:, :, None]:
        blocks[:, 1:] = blocks[:, 1:] * (1 - p) + blocks[:, :-1] * p
        blocks[:, :1] *= 1 - p
    for block in blocks:
        pmf = np.convolve(pmf, block)[:size]
    tails = pmf[: n_fraud + 1].sum(), pmf[n_fraud:].sum()
    return float(min(1.0, 2 * min(tails)))


def _reliability(
    probabilities: np.ndarray,
    alpha: float,
    drift: DriftReport | None,
    prediction_drift: PredictionDriftResult | None,
    labels: ArrayLike | None,
) -> tuple[bool, str]:
    """Whether the score-to-probability map can be trusted on this window, and why."""
    checked, reasons = [], []
    if drift is not None:
        checked.append("features")
        if drift.dataset_drift:
            names = drift.drifted_features
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons.append(f"features drifted ({shown})")
    if prediction_drift is not None:
        checked.append("scores")
        if prediction_drift.drifted:
            reasons.append(
                f"scores drifted (expected frauds x{prediction_drift.mean_ratio:.2f}, "
                f"KS {prediction_drift.ks_statistic:.3f})"
            )
    if labels is not None:
        y, _ = validate_labels_and_scores(labels, probabilities)
        checked.append("fraud count")
        p_value = _fraud_count_p_value(probabilities, int(y.sum()))
        if p_value <= alpha:
            reasons.append(
                f"{int(y.sum())} frauds arrived where the scores expect "
                f"{probabilities.sum():.1f} (p = {p_value:.2g})"
            )
    if reasons:
        return False, "; ".join(reasons)
    if not checked:
        return True, "not checked: no drift tests or labels were given"
    return True, f"no drift ({', '.join(checked)} checked)"


def estimate_performance(
    scores: ArrayLike,
    *,
    threshold: float = 0.5,
    n_samples: int = 200,
    confidence: float = 0.9,
    random_state: int = 0,
    drift: DriftReport | None = None,
    prediction_drift: PredictionDriftResult | None = None,
    labels: ArrayLike | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Estimate the metrics of a window without labels, from calibrated scores.

    Each score is read as the probability that its transaction is fraud, so the labels
    are independent draws ``Bernoulli(score)``. Precision and accuracy at ``threshold``,
    the fraud count and the fraud rate have closed-form expectations; recall, F1, average
    precision and ROC AUC are averaged over ``n_samples`` simulated label sets (draws
    without any fraud, for which these are undefined, are left out). The interval of each
    metric is the central ``confidence`` range of the simulated label sets: where the
    realised metric will fall once labels arrive, *if the scores are calibrated on this
    window*. It holds the label noise only, not the error of the calibration map itself.

    The estimate is only as good as that map, and drift can break it: ``reliable`` is
    false when ``drift`` or ``prediction_drift`` fired, or when ``labels`` hold
    significantly more or fewer frauds than the scores expect (exact two-sided test at
    ``alpha``); ``reliability_note`` says why in words.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Fraud probabilities in [0, 1] (at least ``MIN_ROWS``).
    threshold : float, default 0.5
        Operating threshold: ``score >= threshold`` raises an alert.
    n_samples : int, default 200
        Number of simulated label sets.
    confidence : float, default 0.9
        Coverage of the intervals, in (0, 1).
    random_state : int, default 0
        Seed of the label simulation.
    drift, prediction_drift : DriftReport, PredictionDriftResult, optional
        The window's drift tests against the reference (:func:`monitor_window` passes them).
    labels : array-like of shape (n,), optional
        Labels of the window when they have arrived: used to check the calibration the
        estimate rests on, never in the estimate itself.
    alpha : float, default 0.05
        False-alarm rate of the fraud-count check on ``labels``.

    Returns
    -------
    dict
        ``estimated_<metric>`` with ``estimated_<metric>_lower`` and ``_upper`` for
        ``accuracy``, ``average_precision``, ``roc_auc``, ``fraud_precision``,
        ``fraud_recall``, ``fraud_f1``, ``n_fraud`` (the frauds the estimate rests on) and
        ``fraud_rate`` (metric names as in :func:`fraudkit.metrics.evaluate`); the
        observed ``threshold``, ``n_transactions`` and ``n_alerts``; ``confidence``;
        ``reliable`` (bool) and ``reliability_note`` (str).

    Raises
    ------
    DataValidationError
        When scores are not probabilities, or labels are not 0/1 or do not align.
    ConfigurationError
        When ``n_samples``, ``confidence`` or ``alpha`` is invalid.
    """
    probabilities = _scores("scores", scores, probabilities=True)
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 1):
        raise ConfigurationError(f"n_samples must be a positive integer, got {n_samples!r}")
    _check_fraction("confidence", confidence)
    _check_fraction("alpha", alpha)
    n = probabilities.size
    alerts = probabilities >= threshold
    n_alerts = int(alerts.sum())
    expected_caught = float(probabilities[alerts].sum())
    draws = _label_draws(probabilities, threshold, n_samples, np.random.default_rng(random_state))
    exact = {
        "accuracy": (expected_caught + float((1 - probabilities[~alerts]).sum())) / n,
        "fraud_precision": expected_caught / n_alerts if n_alerts else 0.0,
        "n_fraud": float(probabilities.sum()),
        "fraud_rate": float(probabilities.mean()),
    }
    quantiles = ((1 - confidence) / 2, (1 + confidence) / 2)
    result: dict[str, Any] = {}
    for metric, values in draws.items():
        values = values[~np.isnan(values)]
        if metric in exact:
            estimate = exact[metric]
        else:
            estimate = float(values.mean()) if values.size else np.nan
        low, high = np.quantile(values, quantiles) if values.size else (np.nan, np.nan)
        # Lumpy draws (a handful of alerts) can put the mean outside the central range.
        result[f"estimated_{metric}"] = estimate
        result[f"estimated_{metric}_lower"] = float(min(low, estimate))
        result[f"estimated_{metric}_upper"] = float(max(high, estimate))
    reliable, note = _reliability(probabilities, alpha, drift, prediction_drift, labels)
    return result | {
        "threshold": float(threshold),
        "n_transactions": n,
        "n_alerts": n_alerts,
        "confidence": confidence,
        "reliable": reliable,
        "reliability_note": note,
    }


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, eq=False)
class WindowReport:
    """Everything monitoring learns about one window.

    Attributes
    ----------
    drift : DriftReport
        Feature drift against the reference.
    prediction_drift : PredictionDriftResult
        Score drift against the reference.
    estimate : dict
        The label-free estimate (:func:`estimate_performance`), always present, with its
        intervals and its ``reliable`` flag.
    realised : dict of str to float or None
        Realised metrics (:func:`fraudkit.metrics.evaluate`) once labels have arrived.
    warnings : tuple of str
        Sentences for the report: too few frauds to judge the window, or an unreliable
        estimate judging it.
    """

    drift: DriftReport
    prediction_drift: PredictionDriftResult
    estimate: dict[str, Any]
    realised: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def labels_used(self) -> bool:
        """Whether realised metrics judge the window (otherwise the estimate does)."""
        return self.realised is not None

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics that judge the window: realised when labels arrived, else estimated."""
        return self.realised if self.realised is not None else self.estimate

    def to_dict(self) -> dict[str, float]:
        """Flat numeric dict for ``log_metrics``: drift summaries, realised and estimated."""
        realised = {k: v for k, v in (self.realised or {}).items() if isinstance(v, int | float)}
        estimated = {k: v for k, v in self.estimate.items() if k.startswith("estimated_")}
        return {
            **self.drift.to_dict(),
            **self.prediction_drift.to_dict(),
            "labels_used": int(self.labels_used),
            "estimate_reliable": int(self.estimate["reliable"]),
            "n_warnings": len(self.warnings),
            **{k: self.estimate[k] for k in ("threshold", "n_transactions", "n_alerts")},
            **realised,
            **estimated,
        }


def _window_warnings(
    n_rows: int, estimate: Mapping[str, Any], realised: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """Warnings a window's judgement carries (few frauds also go out as SmallSampleWarning)."""
    found = []
    if realised is not None:
        few = few_frauds_message(int(realised["n_fraud"]), n_rows, "the window")
    else:
        expected = round(estimate["estimated_n_fraud"])
        few = few_frauds_message(expected, n_rows, "the window (frauds expected from its scores)")
    if few:
        warnings.warn(few, SmallSampleWarning, stacklevel=3)
        found.append(few)
    if realised is None and not estimate["reliable"]:
        found.append(
            f"the label-free estimate judging this window is unreliable: "
            f"{estimate['reliability_note']}"
        )
    return tuple(found)


def monitor_window(
    model: Any,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    threshold: float = 0.5,
    labels_available: bool = True,
    alpha: float = 0.05,
    reference_scores: ArrayLike | None = None,
    drift: DriftReport | None = None,
) -> WindowReport:
    """Check one window: feature drift, score drift and performance.

    Every window gets the label-free estimate (with intervals and a reliability flag);
    realised metrics join it when labels have arrived, and then judge the window.

    Parameters
    ----------
    model : estimator
        A fitted model, scored through :func:`fraudkit.models.predict_scores`.
    reference : pandas.DataFrame
        Transactions the model never trained on, e.g. its test period, kept with the model
        version (see the module notes).
    window : pandas.DataFrame
        The monitoring window.
    threshold : float, default 0.5
        The model's operating threshold.
    labels_available : bool, default True
        Whether the window's labels have arrived. Realised metrics need this *and* a
        ``Class`` column.
    alpha : float, default 0.05
        False-alarm rate of the data- and prediction-drift tests and of the fraud-count
        check of the estimate.
    reference_scores : array-like, optional
        The model's scores on ``reference`` (kept with the version), to avoid rescoring it.
    drift : DriftReport, optional
        :func:`detect_drift` of this window against this reference, when several models
        are monitored on the same window.

    Returns
    -------
    WindowReport

    Raises
    ------
    DataValidationError
        When ``reference_scores`` or ``drift`` does not belong to these frames, or the
        inputs fail the checks of the tests.

    Warns
    -----
    SmallSampleWarning
        When the window holds (or, without labels, its scores expect) fewer than
        :data:`fraudkit.metrics.MIN_FRAUDS` frauds; the message is on the report too.
    """
    if drift is None:
        drift = detect_drift(reference, window, alpha=alpha)
    elif (drift.n_reference, drift.n_current) != (len(reference), len(window)):
        raise DataValidationError(
            f"drift compares {drift.n_reference:,} with {drift.n_current:,} rows, but the "
            f"reference has {len(reference):,} and the window {len(window):,}; pass the "
            "DriftReport of this window against this reference, or None"
        )
    if reference_scores is None:
        reference_scores = predict_scores(model, reference)
    elif np.size(reference_scores) != len(reference):
        raise DataValidationError(
            f"reference_scores has {np.size(reference_scores):,} values for "
            f"{len(reference):,} reference rows; pass the model's scores on this reference"
        )
    scores = predict_scores(model, window)
    prediction_drift = detect_prediction_drift(
        reference_scores, scores, alpha=alpha, threshold=threshold
    )
    labels = window[LABEL_COLUMN] if labels_available and LABEL_COLUMN in window else None
    realised = None
    if labels is not None:
        amount = window[AMOUNT_COLUMN] if AMOUNT_COLUMN in window.columns else None
        realised = evaluate(labels, scores, threshold=threshold, amount=amount)
    estimate = estimate_performance(
        scores,
        threshold=threshold,
        drift=drift,
        prediction_drift=prediction_drift,
        labels=labels,
        alpha=alpha,
    )
    notes = _window_warnings(len(window), estimate, realised)
    return WindowReport(drift, prediction_drift, estimate, realised, notes)


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class MonitoringAlert:
    """Alert rules evaluated on one window.

    Attributes
    ----------
    data_drift, prediction_drift : bool
        The window's feature / score drift tests fired.
    performance_drop : bool
        The metric fell significantly and more than ``tolerance`` below the baseline, or
        the registry's degradation check reported a degradation.
    rules_fired : tuple of str
        Names of the rules that fired, among ``data_drift``, ``prediction_drift``,
        ``performance_drop`` and ``registry_degradation``.
    retraining_recommended : bool
        Performance dropped, or data and predictions drifted together.
    details : dict
        Numbers behind the decision (metric values, relative drop, drifted features).
    """

    data_drift: bool
    prediction_drift: bool
    performance_drop: bool
    rules_fired: tuple[str, ...]
    retraining_recommended: bool
    details: dict[str, Any]

    def to_dict(self) -> dict[str, float]:
        """Flat numeric dict (0/1 flags) for ``log_metrics``."""
        return {
            "alert_data_drift": int(self.data_drift),
            "alert_prediction_drift": int(self.prediction_drift),
            "alert_performance_drop": int(self.performance_drop),
            "retraining_recommended": int(self.retraining_recommended),
        }


def _evidence(metrics: Mapping[str, Any], metric: str, source: str) -> tuple[float, float]:
    """``metric`` (or the label-free ``estimated_<metric>``) and the count it rests on."""
    for prefix in ("", "estimated_"):
        if prefix + metric in metrics:
            count = _EVIDENCE.get(metric, f"{prefix}n_fraud")
            if count not in metrics:
                raise DataValidationError(
                    f"the {source} metrics lack {count!r}, the count that {metric} rests on "
                    "and the performance test weighs it by; pass the whole result of "
                    "evaluate() or estimate_performance()"
                )
            return float(metrics[prefix + metric]), float(metrics[count])
    raise ConfigurationError(
        f"metric {metric!r} is not among the {source} metrics {sorted(metrics)}; "
        "pass one of those names (without the estimated_ prefix)"
    )


def _performance_rule(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
    metric: str,
    tolerance: float,
    alpha: float,
) -> tuple[bool, dict[str, Any]]:
    """Whether ``metric`` dropped more than ``tolerance`` and significantly (module notes)."""
    current, current_n = _evidence(metrics, metric, "window")
    baseline, baseline_n = _evidence(baseline_metrics, metric, "baseline")
    if not baseline > 0:
        raise DataValidationError(
            f"baseline {metric} is {baseline!r}; a relative drop needs a positive baseline, "
            "so pass the metrics of a model that worked"
        )
    variance = sum(
        value * (1 - value) / n if n > 0 else np.inf
        for value, n in ((baseline, baseline_n), (current, current_n))
    )
    # A window without fraud has no AP/AUC (NaN): no evidence either way, so no alert.
    z = (baseline - current) / np.sqrt(variance) if variance > 0 else np.nan
    p_value = float(stats.norm.sf(z)) if not np.isnan(z) else np.nan
    relative_drop = (baseline - current) / baseline
    return bool(relative_drop > tolerance and p_value <= alpha), {
        "metric": metric,
        "baseline_value": baseline,
        "window_value": current,
        "relative_drop": relative_drop,
        "tolerance": tolerance,
        "drop_p_value": p_value,
        "baseline_n": baseline_n,
        "window_n": current_n,
    }


def evaluate_alerts(
    window_report: WindowReport,
    *,
    baseline_metrics: Mapping[str, Any] | None = None,
    metric: str = "average_precision",
    tolerance: float = 0.1,
    alpha: float = 0.05,
    degradation: Any | None = None,
) -> MonitoringAlert:
    """Apply the alert rules to one window.

    Rules: ``data_drift`` (the dataset drift test fired), ``prediction_drift`` (the score
    drift test fired), ``performance_drop`` (``metric`` fell by more than ``tolerance``
    relative to ``baseline_metrics``, and significantly so given the frauds both rest on:
    see the module notes) and ``registry_degradation`` (``degradation.degraded`` is
    true). Retraining is recommended when performance dropped by either rule, or when data
    drift and prediction drift fired together: drift that moves the scores as well is drift
    the model is sensitive to.

    Parameters
    ----------
    window_report : WindowReport
        Result of :func:`monitor_window`.
    baseline_metrics : mapping, optional
        Metrics of the model at acceptance: its test-set :func:`evaluate` result, with the
        counts (``n_fraud``, ``n_alerts``) the metric rests on. Without it the performance
        rule is skipped.
    metric : str, default "average_precision"
        A higher-is-better metric name of :func:`fraudkit.metrics.evaluate`; when the
        window holds label-free estimates, ``estimated_<metric>`` is used.
    tolerance : float, default 0.1
        Largest tolerated relative drop (0.1 = 10 % below baseline).
    alpha : float, default 0.05
        False-alarm rate of the one-sided test that the drop is more than noise.
    degradation : object, optional
        Anything with a boolean ``degraded`` attribute, such as the registry's performance
        degradation check.

    Returns
    -------
    MonitoringAlert
    """
    if tolerance < 0:
        raise ConfigurationError(f"tolerance must be a non-negative fraction, got {tolerance!r}")
    _check_fraction("alpha", alpha)
    drift = window_report.drift
    prediction = window_report.prediction_drift
    details: dict[str, Any] = {
        "share_drifted": drift.share_drifted,
        "drifted_features": drift.drifted_features,
        "prediction_ks": prediction.ks_statistic,
        "prediction_alert_rate": prediction.alert_rate_current,
        "prediction_mean_ratio": prediction.mean_ratio,
        "labels_used": window_report.labels_used,
        "estimate_reliable": window_report.estimate["reliable"],
    }
    metric_dropped = False
    if baseline_metrics is not None:
        metric_dropped, numbers = _performance_rule(
            window_report.metrics, baseline_metrics, metric, tolerance, alpha
        )
        details |= numbers
    degraded = False
    if degradation is not None:
        if not hasattr(degradation, "degraded"):
            raise TypeError(
                f"degradation must have a boolean 'degraded' attribute, "
                f"got {type(degradation).__name__}"
            )
        degraded = bool(degradation.degraded)
        details["registry_degradation"] = degraded
    fired = {
        "data_drift": drift.dataset_drift,
        "prediction_drift": prediction.drifted,
        "performance_drop": metric_dropped,
        "registry_degradation": degraded,
    }
    performance_drop = metric_dropped or degraded
    return MonitoringAlert(
        data_drift=drift.dataset_drift,
        prediction_drift=prediction.drifted,
        performance_drop=performance_drop,
        rules_fired=tuple(rule for rule, hit in fired.items() if hit),
        retraining_recommended=performance_drop or (drift.dataset_drift and prediction.drifted),
        details=details,
    )


def summarise_alerts(alerts: Sequence[MonitoringAlert]) -> dict[str, Any]:
    """Summarise the alerts of consecutive windows for the end-of-run report.

    Parameters
    ----------
    alerts : sequence of MonitoringAlert
        One per window, in time order.

    Returns
    -------
    dict
        ``n_windows``; ``data_drift_windows``, ``prediction_drift_windows``,
        ``performance_drop_windows``, ``retraining_windows`` (0-based window positions);
        ``first_alert_window`` (first window where any rule fired, or None) and
        ``retraining_recommended`` (any window recommends it).
    """

    def windows(flag: str) -> list[int]:
        return [i for i, alert in enumerate(alerts) if getattr(alert, flag)]

    first_alert = next((i for i, alert in enumerate(alerts) if alert.rules_fired), None)
    retraining = windows("retraining_recommended")
    return {
        "n_windows": len(alerts),
        "data_drift_windows": windows("data_drift"),
        "prediction_drift_windows": windows("prediction_drift"),
        "performance_drop_windows": windows("performance_drop"),
        "retraining_windows": retraining,
        "first_alert_window": first_alert,
        "retraining_recommended": bool(retraining),
    }
