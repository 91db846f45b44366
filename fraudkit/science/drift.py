"""Feature drift and score drift: two-sample tests of a window against the reference.

The reference is a batch of transactions the model never trained on (the training
notebook keeps its validation and test periods, with the model's scores and the labels,
with the model version). Against a sample of its own training data a model looks drifted
on new traffic: it scores the rows it learnt from more confidently.

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
period should hold about 52 frauds, give or take 7, and the test period of the training
notebook's default run (seed 0) holds 87. Against that period alone, ordinary traffic
carries 40 % fewer expected frauds, and prediction drift fired on about half of the
undrifted windows. Hence ``base_rate`` in :func:`detect_prediction_drift`: the reference
says what frauds and legitimate transactions look like to the model, and the fraud rate
comes from the longest labelled history (``benchmarks/bench_drift.py``).

Prediction drift
----------------
The KS test on the scores sees a change of shape; a test of their means sees a change in
the expected fraud count, which a fraud wave moves while changing a few tenths of a percent
of the scores. The mean replaced Fisher's test of the alert count: it weighs every score
instead of counting those past the threshold, and over ten references detected
``new_fraud_pattern`` 1.2 to 1.7 times as often, at the same false-alarm rate.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from fraudkit.science.metrics import (
    MIN_ROWS,
    as_scores,
    check_base_rate,
    check_fraction,
    validate_labels_and_scores,
)
from fraudkit.science.two_sample import category_test, feature_test, psi

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DRIFT_METHODS",
    "MIN_ROWS",
    "DriftReport",
    "PredictionDriftResult",
    "detect_drift",
    "detect_prediction_drift",
]

# The test of a numeric column left with fewer than MIN_ROWS values by drop_missing.
_TOO_FEW = "too few values"
DRIFT_METHODS: tuple[str, ...] = ("auto", "psi", "wasserstein")
# Conventional cut-offs of the effect-size methods: PSI 0.2 is the credit-scoring rule of
# thumb for a "significant shift"; 0.1 reference standard deviations for Wasserstein.
DEFAULT_THRESHOLDS: dict[str, float] = {"psi": 0.2, "wasserstein": 0.1}
_CORRECTIONS: dict[str, str] = {"bh": "fdr_bh", "holm": "holm"}
_FEATURE_TABLE_COLUMNS = [
    *("feature", "test", "statistic", "p_value", "p_value_adjusted", "effect", "threshold"),
    *("drifted", "unseen", "unseen_categories"),
]
_UNTESTABLE = {
    TIME_COLUMN: "the clock moves between any two windows, so it always drifts",
    LABEL_COLUMN: "it is the label; a change in the fraud rate shows in the realised "
    "metrics and in the model's alert rate (prediction drift)",
}


# --------------------------------------------------------------------------- validation


def _check_frame(name: str, frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) < MIN_ROWS:
        raise DataValidationError(
            f"{name} has {len(frame)} rows but drift tests need at least {MIN_ROWS}; "
            "use a longer window"
        )


def _resolve_features(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str] | None,
    *,
    allow_none: bool = False,
) -> list[str]:
    """Return the columns to test: ``features``, or the model features both frames hold."""
    if features is None:
        found = [c for c in FEATURE_COLUMNS if c in reference.columns and c in current.columns]
        if not found and not allow_none:
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
        _require_in_both(reference, current, column, "feature")
    return chosen


def _require_in_both(
    reference: pd.DataFrame, current: pd.DataFrame, column: str, what: str
) -> None:
    for name, frame in (("reference", reference), ("current", current)):
        if column not in frame.columns:
            raise DataValidationError(
                f"{what} {column!r} is not a column of {name}; "
                f"its columns are {list(map(str, frame.columns))}"
            )


def _resolve_categorical(
    reference: pd.DataFrame, current: pd.DataFrame, categorical: Sequence[str]
) -> list[str]:
    """The categorical columns to test; each must be in both frames."""
    chosen = list(dict.fromkeys([categorical] if isinstance(categorical, str) else categorical))
    for column in chosen:
        _require_in_both(reference, current, column, "categorical column")
    return chosen


def _column(name: str, frame: pd.DataFrame, column: str, drop_missing: bool) -> np.ndarray:
    """Return ``frame[column]`` as finite floats (its missing cells left out when
    ``drop_missing``), or raise DataValidationError."""
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series):
        raise DataValidationError(
            f"feature {column!r} of {name} has dtype {series.dtype}; drift tests need numeric "
            "columns, so encode it as numbers or leave it out of features"
        )
    values = series.to_numpy(dtype=float, na_value=np.nan)
    if drop_missing:
        values = values[~np.isnan(values)]
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            f"feature {column!r} of {name} has {int(bad.sum())} missing or infinite values "
            f"(first at index {series.index[int(np.argmax(bad))]!r}); impute or drop those rows"
        )
    return values


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
        score-only tests psi and wasserstein), ``effect`` (KS distance, for every test;
        the total variation distance for a categorical column), ``threshold`` (what the
        decision compares with: ``alpha`` for the adjusted p-value of ks/chi2, the
        cut-off of the statistic for psi/wasserstein), ``drifted``, and for a
        categorical column ``unseen`` (rows of the window in categories the reference
        never saw) and ``unseen_categories`` (the most frequent of them).
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
    categorical: Sequence[str] = (),
    alpha: float = 0.05,
    method: str = "auto",
    correction: str = "bh",
    threshold: float | None = None,
    min_effect: float | None = None,
    drop_missing: bool = False,
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
        frames (none, when ``categorical`` names columns and the frames have no Kaggle
        columns). ``Time`` (always moves) and ``Class`` (the label) are never tested.
    categorical : sequence of str, default ()
        Categorical columns (any type; empty cells are a category of their own), each
        tested with a chi-square test of homogeneity whose p-value joins the same
        multiple-testing correction, whatever ``method``. Categories of the window that
        the reference never saw are counted (``unseen``) and named
        (``unseen_categories``); rare ones share one cell of the test.
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
    drop_missing : bool, default False
        Leave the missing cells of the numeric features out of their tests, for features
        where an empty cell is a value (a card's first transaction has no time since its
        previous one). By default a missing cell is refused. A column left with fewer
        than ``MIN_ROWS`` values on either side is not tested (test ``"too few values"``,
        no p-value, never drifted) and joins no correction. A change in how often a cell
        is empty is not tested.

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
    cutoff = _drift_cutoff(alpha, method, correction, threshold, min_effect)
    _check_frame("reference", reference)
    _check_frame("current", current)
    categories = _resolve_categorical(reference, current, categorical)
    columns = _resolve_features(reference, current, features, allow_none=bool(categories))
    columns = [c for c in columns if c not in categories]

    results = []
    for column in columns:
        before = _column("reference", reference, column, drop_missing)
        after = _column("current", current, column, drop_missing)
        if min(len(before), len(after)) < MIN_ROWS:  # mostly empty cells: nothing to test
            results.append((_TOO_FEW, np.nan, np.nan, np.nan, 0, ""))
            continue
        results.append((*feature_test(before, after, method), 0, ""))
    results += [category_test(reference[c], current[c]) for c in categories]
    table = pd.DataFrame(
        results,
        columns=["test", "statistic", "p_value", "effect", "unseen", "unseen_categories"],
    )
    table.insert(0, "feature", [*columns, *categories])
    table["drifted"] = _drifted(table, method, alpha, correction, cutoff, min_effect)
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


def _drift_cutoff(
    alpha: float,
    method: str,
    correction: str,
    threshold: float | None,
    min_effect: float | None,
) -> float | None:
    """Check the options of :func:`detect_drift`; return the statistic's cut-off (None for auto)."""
    check_fraction("alpha", alpha)
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
        check_fraction("min_effect", min_effect, closed=True)
    return cutoff


def _drifted(
    table: pd.DataFrame,
    method: str,
    alpha: float,
    correction: str,
    cutoff: float | None,
    min_effect: float | None,
) -> pd.Series:
    """Decide which features drifted; adds ``p_value_adjusted`` and ``threshold`` to ``table``."""
    if method == "auto":
        # A column left untested (too few values) has no p-value and joins no correction.
        tested = table["p_value"].notna()
        table["p_value_adjusted"] = np.nan
        if tested.any():
            table.loc[tested, "p_value_adjusted"] = multipletests(
                table.loc[tested, "p_value"], alpha=alpha, method=_CORRECTIONS[correction]
            )[1]
        table["threshold"] = alpha
        drifted = table["p_value_adjusted"] <= alpha
    else:
        table["p_value_adjusted"] = np.nan
        table["threshold"] = cutoff
        drifted = table["statistic"] > cutoff
        # Categorical columns have no PSI or Wasserstein: their chi-square p-values are
        # adjusted among themselves and held to alpha.
        tested = table["test"] == "chi2"
        if tested.any():
            adjusted = multipletests(
                table.loc[tested, "p_value"], alpha=alpha, method=_CORRECTIONS[correction]
            )[1]
            table.loc[tested, "p_value_adjusted"] = adjusted
            table.loc[tested, "threshold"] = alpha
            drifted = drifted.where(~tested, table["p_value_adjusted"] <= alpha)
    if min_effect is not None:
        drifted &= table["effect"] >= min_effect
    return drifted.astype(bool)


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


def _mean_atcheck_base_rate(
    reference: np.ndarray, labels: ArrayLike | None, base_rate: tuple[int, int]
) -> tuple[float, float]:
    """Mean reference score at the long-run fraud rate, and the variance of that mean."""
    if labels is None:
        raise DataValidationError(
            "base_rate needs reference_labels: the fraud and legitimate scores of the "
            "reference are re-weighted to the long-run fraud rate"
        )
    y, _ = validate_labels_and_scores(labels, reference)
    rate, rows = check_base_rate(base_rate), int(base_rate[1])
    fraud, legit = reference[y == 1], reference[y == 0]
    if fraud.size < 2 or legit.size < 2:
        raise DataValidationError(
            f"the reference holds {fraud.size} frauds and {legit.size} legitimate rows; "
            "base_rate needs at least 2 of each, so pass a longer reference or no base_rate"
        )
    mean = rate * fraud.mean() + (1 - rate) * legit.mean()
    variance = (
        rate**2 * fraud.var(ddof=1) / fraud.size
        + (1 - rate) ** 2 * legit.var(ddof=1) / legit.size
        + (fraud.mean() - legit.mean()) ** 2 * rate * (1 - rate) / rows
    )
    return float(mean), float(variance)


def detect_prediction_drift(
    reference_scores: ArrayLike,
    current_scores: ArrayLike,
    *,
    alpha: float = 0.05,
    threshold: float = 0.5,
    reference_labels: ArrayLike | None = None,
    base_rate: tuple[int, int] | None = None,
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
    reference_labels : array-like of shape (n_reference,), optional
        Labels of the reference, needed by ``base_rate``.
    base_rate : tuple of (int, int), optional
        ``(frauds, rows)`` of the longest labelled history of the model's traffic (e.g. all
        the data of its training notebook). The reference mean is then taken at that fraud
        rate, ``rate * mean(fraud scores) + (1 - rate) * mean(legit scores)``, with the
        noise of all three estimates in its standard error: the reference's own fraud count
        is a small sample (a 30,000-row period holds about 52 frauds, give or take 7),
        while what a fraud looks like to the model is what the reference is kept for.
        Without it, the reference's own mean is used (Welch's test).

    Returns
    -------
    PredictionDriftResult

    Raises
    ------
    DataValidationError
        When ``reference_labels`` do not match the reference scores, or ``base_rate``
        is not a pair of counts with ``0 <= frauds <= rows`` and ``rows > 0``.
    """
    check_fraction("alpha", alpha)
    reference = as_scores("reference_scores", reference_scores)
    current = as_scores("current_scores", current_scores)
    ks = stats.ks_2samp(reference, current)
    if base_rate is None:
        reference_mean = float(reference.mean())
        spread = reference.var() / reference.size + current.var() / current.size
        # Constant scores on both sides leave Welch's statistic undefined: equal or not.
        mean_p_value = (
            float(stats.ttest_ind(current, reference, equal_var=False).pvalue)
            if spread > 0
            else float(current.mean() == reference_mean)
        )
    else:
        reference_mean, reference_spread = _mean_atcheck_base_rate(
            reference, reference_labels, base_rate
        )
        spread = reference_spread + current.var(ddof=1) / current.size
        # Both sides hold thousands of rows: the normal limit of Welch's statistic.
        mean_p_value = (
            float(2 * stats.norm.sf(abs(current.mean() - reference_mean) / np.sqrt(spread)))
            if spread > 0
            else float(current.mean() == reference_mean)
        )
    return PredictionDriftResult(
        drifted=min(float(ks.pvalue), mean_p_value) <= alpha / 2,
        ks_statistic=float(ks.statistic),
        ks_p_value=float(ks.pvalue),
        mean_p_value=mean_p_value,
        alert_rate_reference=float(np.mean(reference >= threshold)),
        alert_rate_current=float(np.mean(current >= threshold)),
        psi=psi(reference, current),
        mean_ratio=float(current.mean() / reference_mean) if reference_mean else np.nan,
        alpha=alpha,
        threshold=float(threshold),
        n_reference=reference.size,
        n_current=current.size,
    )
