"""Data drift, prediction drift, windowed performance and retraining alerts.

A monitoring window is a batch of recent transactions compared with a reference batch (the
data the production model was accepted on). Three signals come out of it:

- data drift: every feature of the window against the reference, by a two-sample test;
- prediction drift: the model's scores on the window against those on the reference (shape
  of the distribution, and the alert rate, which is where a fraud wave shows);
- performance: realised metrics once labels have arrived, otherwise a label-free estimate
  from the scores (fraud labels arrive days or weeks after the transaction).

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fraudkit.data import AMOUNT_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from fraudkit.exceptions import ConfigurationError, DataValidationError
from fraudkit.metrics import evaluate
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
        The KS test or the alert-rate test is significant, each at ``alpha / 2``
        (Bonferroni), so that an undrifted window alarms with probability at most ``alpha``.
    ks_statistic, ks_p_value : float
        Two-sample Kolmogorov-Smirnov test on the scores: any change of shape.
    alert_rate_reference, alert_rate_current : float
        Share of scores at or above ``threshold``.
    alert_p_value : float
        Fisher's exact test of equal alert rates. A fraud wave moves a few tenths of a
        percent of the scores, too few for KS, but it changes the alert count severalfold.
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
    alert_rate_reference: float
    alert_rate_current: float
    alert_p_value: float
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
            "prediction_alert_rate": self.alert_rate_current,
            "prediction_alert_p_value": self.alert_p_value,
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
    of the score distribution (covariate shift the model reacts to); Fisher's exact test on
    the share of scores at or above ``threshold`` catches a change in the number of alerts
    (a fraud wave, a new fraud pattern the model half recognises), which moves too few
    scores for KS to notice. PSI and the mean score ratio are reported as effect sizes.

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
    alerts = [int((x >= threshold).sum()) for x in (reference, current)]
    table = [[alerts[0], reference.size - alerts[0]], [alerts[1], current.size - alerts[1]]]
    alert_p_value = float(stats.fisher_exact(table).pvalue)
    reference_mean = reference.mean()
    return PredictionDriftResult(
        drifted=min(float(ks.pvalue), alert_p_value) <= alpha / 2,
        ks_statistic=float(ks.statistic),
        ks_p_value=float(ks.pvalue),
        alert_rate_reference=alerts[0] / reference.size,
        alert_rate_current=alerts[1] / current.size,
        alert_p_value=alert_p_value,
        psi=_psi(reference, current),
        mean_ratio=float(current.mean() / reference_mean) if reference_mean else np.nan,
        alpha=alpha,
        threshold=float(threshold),
        n_reference=reference.size,
        n_current=current.size,
    )


# --------------------------------------------------------------------------- performance


def _average_precision(labels_by_rank: np.ndarray, group_ends: np.ndarray) -> float:
    """Average precision of one label draw, scikit-learn's step-wise definition.

    ``labels_by_rank`` are the labels ordered by decreasing score; ``group_ends`` are the
    positions where a run of tied scores ends (one threshold per distinct score).
    """
    true_positives = np.cumsum(labels_by_rank)[group_ends]
    precision = true_positives / (group_ends + 1)
    return float(np.sum(np.diff(true_positives, prepend=0) * precision) / true_positives[-1])


def estimate_performance(
    scores: ArrayLike,
    *,
    threshold: float = 0.5,
    n_samples: int = 200,
    random_state: int = 0,
) -> dict[str, float]:
    """Estimate the metrics of a window without labels, from calibrated scores.

    Each score is read as the probability that its transaction is fraud, so the labels
    are independent draws ``Bernoulli(score)``. Precision and accuracy at ``threshold``
    and the fraud rate have closed-form expectations; recall, F1, average precision and
    ROC AUC are averaged over ``n_samples`` simulated label sets (draws without any fraud,
    for which these are undefined, are left out). The estimate is only as good as the
    calibration: under drift a model's scores may no longer be probabilities.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Fraud probabilities in [0, 1] (at least ``MIN_ROWS``).
    threshold : float, default 0.5
        Operating threshold: ``score >= threshold`` raises an alert.
    n_samples : int, default 200
        Number of simulated label sets.
    random_state : int, default 0
        Seed of the label simulation.

    Returns
    -------
    dict of str to float
        ``estimated_accuracy``, ``estimated_average_precision``, ``estimated_roc_auc``,
        ``estimated_fraud_precision``, ``estimated_fraud_recall``, ``estimated_fraud_f1``,
        ``estimated_n_fraud``, ``estimated_fraud_rate``; and the observed ``threshold``,
        ``n_transactions`` and ``n_alerts``. Metric names after the prefix are those of
        :func:`fraudkit.metrics.evaluate`.
    """
    probabilities = _scores("scores", scores, probabilities=True)
    if n_samples < 1:
        raise ConfigurationError(f"n_samples must be a positive integer, got {n_samples!r}")
    n = probabilities.size
    alerts = probabilities >= threshold
    n_alerts = int(alerts.sum())
    order = np.argsort(-probabilities, kind="stable")
    by_rank = probabilities[order]
    group_ends = np.append(np.flatnonzero(np.diff(by_rank)), n - 1)
    ranks = stats.rankdata(probabilities)  # average ranks of ties, as ROC AUC counts them
    rng = np.random.default_rng(random_state)

    draws = []
    for _ in range(n_samples):
        labels = rng.random(n) < probabilities
        n_fraud = int(labels.sum())
        if n_fraud in (0, n):
            continue
        caught = int(labels[alerts].sum())
        draws.append(
            (
                caught / n_fraud,
                2 * caught / (n_alerts + n_fraud),
                _average_precision(labels[order], group_ends),
                (ranks[labels].sum() - n_fraud * (n_fraud + 1) / 2) / (n_fraud * (n - n_fraud)),
            )
        )
    recall, f1, average_precision, roc_auc = np.mean(draws, axis=0) if draws else np.full(4, np.nan)
    expected_caught = float(probabilities[alerts].sum())
    return {
        "estimated_accuracy": (expected_caught + float((1 - probabilities[~alerts]).sum())) / n,
        "estimated_average_precision": float(average_precision),
        "estimated_roc_auc": float(roc_auc),
        "estimated_fraud_precision": expected_caught / n_alerts if n_alerts else 0.0,
        "estimated_fraud_recall": float(recall),
        "estimated_fraud_f1": float(f1),
        "estimated_n_fraud": float(probabilities.sum()),
        "estimated_fraud_rate": float(probabilities.mean()),
        "threshold": float(threshold),
        "n_transactions": n,
        "n_alerts": n_alerts,
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
    metrics : dict of str to float
        Realised metrics (:func:`fraudkit.metrics.evaluate`) when ``labels_used``, else the
        label-free estimate (:func:`estimate_performance`, keys ``estimated_*``).
    labels_used : bool
        Whether ``metrics`` come from true labels.
    """

    drift: DriftReport
    prediction_drift: PredictionDriftResult
    metrics: dict[str, float]
    labels_used: bool

    def to_dict(self) -> dict[str, float]:
        """Flat numeric dict for ``log_metrics``: drift summaries, then every metric."""
        return {
            **self.drift.to_dict(),
            **self.prediction_drift.to_dict(),
            "labels_used": int(self.labels_used),
            **{k: v for k, v in self.metrics.items() if isinstance(v, int | float)},
        }


def monitor_window(
    model: Any,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    threshold: float = 0.5,
    labels_available: bool = True,
    alpha: float = 0.05,
    reference_scores: ArrayLike | None = None,
) -> WindowReport:
    """Check one window: feature drift, score drift and performance.

    Parameters
    ----------
    model : estimator
        A fitted model, scored through :func:`fraudkit.models.predict_scores`.
    reference : pandas.DataFrame
        Transactions the model was accepted on.
    window : pandas.DataFrame
        The monitoring window.
    threshold : float, default 0.5
        The model's operating threshold.
    labels_available : bool, default True
        Whether the window's labels have arrived. Realised metrics need this *and* a
        ``Class`` column; otherwise performance is estimated from the scores.
    alpha : float, default 0.05
        False-alarm rate of the data- and prediction-drift tests.
    reference_scores : array-like, optional
        The model's scores on ``reference``, to avoid rescoring it for every window.

    Returns
    -------
    WindowReport
    """
    drift = detect_drift(reference, window, alpha=alpha)
    if reference_scores is None:
        reference_scores = predict_scores(model, reference)
    scores = predict_scores(model, window)
    prediction_drift = detect_prediction_drift(
        reference_scores, scores, alpha=alpha, threshold=threshold
    )
    labels_used = labels_available and LABEL_COLUMN in window.columns
    if labels_used:
        amount = window[AMOUNT_COLUMN] if AMOUNT_COLUMN in window.columns else None
        metrics = evaluate(window[LABEL_COLUMN], scores, threshold=threshold, amount=amount)
    else:
        metrics = estimate_performance(scores, threshold=threshold)
    return WindowReport(drift, prediction_drift, metrics, labels_used)


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class MonitoringAlert:
    """Alert rules evaluated on one window.

    Attributes
    ----------
    data_drift, prediction_drift : bool
        The window's feature / score drift tests fired.
    performance_drop : bool
        The metric fell more than ``tolerance`` below the baseline, or the registry's
        degradation check reported a degradation.
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


def _metric_value(metrics: Mapping[str, Any], metric: str, source: str) -> float:
    """``metrics[metric]``, falling back to the label-free ``estimated_<metric>``."""
    for key in (metric, f"estimated_{metric}"):
        if key in metrics:
            return float(metrics[key])
    raise ConfigurationError(
        f"metric {metric!r} is not among the {source} metrics {sorted(metrics)}; "
        "pass one of those names (without the estimated_ prefix)"
    )


def _performance_rule(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
    metric: str,
    tolerance: float,
) -> tuple[bool, dict[str, Any]]:
    """Whether ``metric`` dropped more than ``tolerance`` relative to the baseline."""
    current = _metric_value(metrics, metric, "window")
    baseline = _metric_value(baseline_metrics, metric, "baseline")
    if not baseline > 0:
        raise DataValidationError(
            f"baseline {metric} is {baseline!r}; a relative drop needs a positive baseline, "
            "so pass the metrics of a model that worked"
        )
    # A window without fraud has no AP/AUC (NaN): no evidence either way, so no alert.
    relative_drop = (baseline - current) / baseline
    return bool(relative_drop > tolerance), {
        "metric": metric,
        "baseline_value": baseline,
        "window_value": current,
        "relative_drop": relative_drop,
        "tolerance": tolerance,
    }


def evaluate_alerts(
    window_report: WindowReport,
    *,
    baseline_metrics: Mapping[str, Any] | None = None,
    metric: str = "average_precision",
    tolerance: float = 0.1,
    degradation: Any | None = None,
) -> MonitoringAlert:
    """Apply the alert rules to one window.

    Rules: ``data_drift`` (the dataset drift test fired), ``prediction_drift`` (the score
    drift test fired), ``performance_drop`` (``metric`` fell by more than ``tolerance``
    relative to ``baseline_metrics``) and ``registry_degradation`` (``degradation.degraded``
    is true). Retraining is recommended when performance dropped by either rule, or when
    data drift and prediction drift fired together: drift that moves the scores as well is
    drift the model is sensitive to.

    Parameters
    ----------
    window_report : WindowReport
        Result of :func:`monitor_window`.
    baseline_metrics : mapping, optional
        Metrics of the model at acceptance (e.g. its test-set :func:`evaluate` result).
        Without it the performance rule is skipped.
    metric : str, default "average_precision"
        A higher-is-better metric name of :func:`fraudkit.metrics.evaluate`; when the
        window holds label-free estimates, ``estimated_<metric>`` is used.
    tolerance : float, default 0.1
        Largest tolerated relative drop (0.1 = 10 % below baseline).
    degradation : object, optional
        Anything with a boolean ``degraded`` attribute, such as the registry's performance
        degradation check.

    Returns
    -------
    MonitoringAlert
    """
    if tolerance < 0:
        raise ConfigurationError(f"tolerance must be a non-negative fraction, got {tolerance!r}")
    drift = window_report.drift
    prediction = window_report.prediction_drift
    details: dict[str, Any] = {
        "share_drifted": drift.share_drifted,
        "drifted_features": drift.drifted_features,
        "prediction_ks": prediction.ks_statistic,
        "prediction_alert_rate": prediction.alert_rate_current,
        "prediction_mean_ratio": prediction.mean_ratio,
        "labels_used": window_report.labels_used,
    }
    metric_dropped = False
    if baseline_metrics is not None:
        metric_dropped, numbers = _performance_rule(
            window_report.metrics, baseline_metrics, metric, tolerance
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
