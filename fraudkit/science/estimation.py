"""Label-free performance estimates, with intervals and a reliability flag.

Fraud labels arrive days or weeks after the transaction (chargebacks), so monitoring
judges the newest windows on estimates. :func:`estimate_performance` reads calibrated
scores as fraud probabilities and averages metrics over label sets drawn from them
(NannyML's CBPE does so for ROC AUC and confusion-matrix metrics; this adds AUPRC). Its
intervals hold the label noise of the window, not the error of the probabilities, so both
rest on the score-to-probability map.

The model's own calibration, a sigmoid fitted on the few dozen frauds of its validation
period, keeps the ranking (and so AUPRC) but under-states the top scores: alerts turned out
about 0.04 more likely to be fraud than it said, even fitted on 1,000 frauds, because its
two-parameter shape does not follow the top. :func:`reference_calibration` therefore fits
isotonic regression on the labelled reference, weighted to the long-run fraud rate, and the
estimate reads the scores through it (``benchmarks/bench_estimation.py``).

The map fails under drift, so the estimate carries a ``reliable`` flag: false when the
window's features or scores drifted (false-alarm rate at most ``2 * alpha``), and once
labels arrive, when the fraud count contradicts the probabilities (exact Poisson-binomial
test at ``alpha``). A new fraud pattern at the real fraud rate is the hard case: about 21
new frauds in a 25,000-row window, scored as legitimate and far out only on features the
model never used. The expected fraud count falls by a third, about two standard deviations
of its noise, so the label-free flag catches about half to two thirds of those windows; the
fraud-count check raises that to all of them once labels are in. Outlier tests on the
features do no better: even the simulator's exact legitimate density, as an outlier score,
finds at most a fifth of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.isotonic import IsotonicRegression

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.drift import DriftReport, PredictionDriftResult
from fraudkit.science.metrics import (
    MIN_FRAUDS,
    as_scores,
    check_base_rate,
    check_fraction,
    validate_labels_and_scores,
)

__all__ = ["bootstrap_calibrations", "estimate_performance", "reference_calibration"]

# Uniform draws held in memory at once by the label simulation (8 bytes each).
_MAX_DRAW_CELLS = 4_000_000
# Scores below this join a single Poisson count in the exact fraud-count test.
_POISSON_BELOW = 1e-3
_COUNT_BLOCK = 16


# --------------------------------------------------------------------------- performance


def _label_draws(
    scores: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    n_samples: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Metrics of ``n_samples`` label sets drawn as independent ``Bernoulli(probabilities)``.

    The model ranks and alerts by ``scores``. ``probabilities`` of shape (m, n) holds m
    plausible maps: draw ``k`` uses map ``k % m``. Returns one array per metric of
    :func:`fraudkit.science.metrics.evaluate` (scikit-learn's definitions, ties included), NaN
    where a draw leaves it undefined (no fraud). The metrics come from the positions of the
    drawn frauds in score order, for all draws at once, instead of a pass over every row of
    every draw.
    """
    n = scores.size
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    by_rank = np.atleast_2d(probabilities)[:, order]
    # Average precision has one threshold per distinct score: where each run of ties ends.
    run_ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    run_end = np.repeat(run_ends, np.diff(np.append(-1, run_ends)))
    ascending_rank = stats.rankdata(scores)[order]  # tied ranks, as ROC AUC counts them
    n_alerts = int(np.sum(ranked >= threshold))  # the alerts are the top of the order
    draws, positions = [], []
    block = max(1, _MAX_DRAW_CELLS // n)  # bounds the memory of the uniform draws
    for start in range(0, n_samples, block):
        maps = by_rank[np.arange(start, min(start + block, n_samples)) % by_rank.shape[0]]
        drawn, position = np.nonzero(rng.random(maps.shape) < maps)
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
    """Two-sided exact p-value of ``n_fraud`` frauds when each row is fraud with its probability.

    The count is Poisson-binomial; with several maps (shape (m, n)), the mixture of theirs.
    """
    maps = np.atleast_2d(probabilities)
    expected = float(maps.sum(axis=1).max())
    size = int(max(n_fraud, expected + 10 * np.sqrt(expected) + 10)) + 2
    pmf = np.mean([_count_pmf(row, size) for row in maps], axis=0)
    tails = pmf[: n_fraud + 1].sum(), pmf[n_fraud:].sum()
    return float(min(1.0, 2 * min(tails)))


def _count_pmf(probabilities: np.ndarray, size: int) -> np.ndarray:
    """Probabilities of 0 .. size - 1 frauds among independent rows (Poisson-binomial).

    Rows below ``_POISSON_BELOW`` are pooled into one Poisson count (Le Cam: off in total
    variation by at most the sum of their squared probabilities, which is below 0.001 times
    their expected count); the others are convolved in exactly.
    """
    small = probabilities < _POISSON_BELOW
    pmf = np.asarray(stats.poisson.pmf(np.arange(size), probabilities[small].sum()), dtype=float)
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
    return pmf


def _reliability(
    probabilities: np.ndarray,
    samples: np.ndarray,
    alpha: float,
    drift: DriftReport | None,
    prediction_drift: PredictionDriftResult | None,
    labels: ArrayLike | None,
    stretch_drift: PredictionDriftResult | None = None,
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
    if stretch_drift is not None:
        checked.append("scores of the label-free stretch")
        if stretch_drift.drifted:
            reasons.append(
                f"scores drifted over the {stretch_drift.n_current:,} rows of the label-free "
                f"windows up to this one (expected frauds x{stretch_drift.mean_ratio:.2f})"
            )
    if labels is not None:
        y, _ = validate_labels_and_scores(labels, probabilities)
        checked.append("fraud count")
        p_value = _fraud_count_p_value(samples, int(y.sum()))
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
    probabilities: ArrayLike | None = None,
    probability_samples: ArrayLike | None = None,
    threshold: float = 0.5,
    n_samples: int = 200,
    confidence: float = 0.9,
    random_state: int = 0,
    drift: DriftReport | None = None,
    prediction_drift: PredictionDriftResult | None = None,
    labels: ArrayLike | None = None,
    alpha: float = 0.05,
    stretch_drift: PredictionDriftResult | None = None,
) -> dict[str, Any]:
    """Estimate the metrics of a window without labels, from calibrated scores.

    Each score is read as the probability that its transaction is fraud, so the labels
    are independent draws ``Bernoulli(score)``. Precision and accuracy at ``threshold``,
    the fraud count and the fraud rate have closed-form expectations; recall, F1, average
    precision and ROC AUC are averaged over ``n_samples`` simulated label sets (draws
    without any fraud, for which these are undefined, are left out). The interval of each
    metric is the central ``confidence`` range of the simulated label sets: where the
    realised metric will fall once labels arrive, *if the scores are calibrated on this
    window*. It holds the label noise, and the error of the calibration map itself only
    when ``probability_samples`` holds plausible alternatives to the map.

    The estimate is only as good as that map, and drift can break it: ``reliable`` is
    false when ``drift``, ``prediction_drift`` or ``stretch_drift`` fired, or when ``labels`` hold
    significantly more or fewer frauds than the scores expect (exact two-sided test at
    ``alpha``); ``reliability_note`` says why in words.

    Parameters
    ----------
    scores : array-like of shape (n,)
        The model's scores (at least ``MIN_ROWS``): they rank the rows and raise the
        alerts. Without ``probabilities`` they must be calibrated probabilities in [0, 1].
    probabilities : array-like of shape (n,), optional
        The fraud probability of each row, when it is not the score itself:
        :func:`monitor_window` maps the scores through isotonic regression fitted on the
        labelled reference (as NannyML's CBPE does), which corrects the top of a sigmoid
        calibration fitted on a few dozen frauds.
    probability_samples : array-like of shape (m, n), optional
        ``m`` plausible probability vectors, e.g. from maps refitted on bootstrap
        resamples of the reference (:func:`bootstrap_calibrations`): label set ``k`` is
        drawn from row ``k % m``, so the intervals and the fraud-count check hold the
        uncertainty of the map as well as the label noise.
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
    stretch_drift : PredictionDriftResult, optional
        Score drift of the label-free stretch this window ends: its scores pooled with
        those of the earlier windows whose labels have not arrived either
        (:func:`fraudkit.science.monitoring.monitor_windows` passes it). A change the model does
        not see, such as fraud it no longer recognises, moves the expected fraud count by
        less than a window's Poisson noise; while it lasts, the evidence adds up over the
        stretch.

    Returns
    -------
    dict
        ``estimated_<metric>`` with ``estimated_<metric>_lower`` and ``_upper`` for
        ``accuracy``, ``average_precision``, ``roc_auc``, ``fraud_precision``,
        ``fraud_recall``, ``fraud_f1``, ``n_fraud`` (the frauds the estimate rests on) and
        ``fraud_rate`` (metric names as in :func:`fraudkit.science.metrics.evaluate`); the
        observed ``threshold``, ``n_transactions`` and ``n_alerts``; ``confidence``;
        ``reliable`` (bool) and ``reliability_note`` (str).

    Raises
    ------
    DataValidationError
        When scores are not probabilities, or labels are not 0/1 or do not align.
    ConfigurationError
        When ``n_samples``, ``confidence`` or ``alpha`` is invalid.
    """
    ranking, probabilities, samples = _checked_inputs(
        scores, probabilities, probability_samples, n_samples, confidence, alpha
    )
    n = probabilities.size
    alerts = ranking >= threshold
    n_alerts = int(alerts.sum())
    expected_caught = float(probabilities[alerts].sum())
    rng = np.random.default_rng(random_state)
    draws = _label_draws(ranking, samples, threshold, n_samples, rng)
    exact = {
        "accuracy": (expected_caught + float((1 - probabilities[~alerts]).sum())) / n,
        "fraud_precision": expected_caught / n_alerts if n_alerts else 0.0,
        "n_fraud": float(probabilities.sum()),
        "fraud_rate": float(probabilities.mean()),
    }
    result = _intervals(draws, exact, confidence)
    reliable, note = _reliability(
        probabilities, samples, alpha, drift, prediction_drift, labels, stretch_drift
    )
    return result | {
        "threshold": float(threshold),
        "n_transactions": n,
        "n_alerts": n_alerts,
        "confidence": confidence,
        "reliable": reliable,
        "reliability_note": note,
    }


def _checked_inputs(
    scores: ArrayLike,
    probabilities: ArrayLike | None,
    probability_samples: ArrayLike | None,
    n_samples: int,
    confidence: float,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranking scores, the probabilities and the probability samples, checked.

    Without ``probabilities`` the scores are the probabilities; without
    ``probability_samples`` the samples are the probabilities (one vector).
    """
    if probabilities is None:
        ranking = probabilities = as_scores("scores", scores, probabilities=True)
    else:
        ranking = as_scores("scores", scores)
        probabilities = as_scores("probabilities", probabilities, probabilities=True)
        if probabilities.size != ranking.size:
            raise DataValidationError(
                f"probabilities has {probabilities.size:,} values for {ranking.size:,} "
                "scores; pass one probability per scored row"
            )
    samples = probabilities
    if probability_samples is not None:
        samples = np.atleast_2d(np.asarray(probability_samples, dtype=float))
        if samples.ndim != 2 or samples.shape[1] != ranking.size:
            raise DataValidationError(
                f"probability_samples has shape {samples.shape}; pass (m, {ranking.size}): "
                "m probability vectors of one value per scored row"
            )
        if not np.all((samples >= 0) & (samples <= 1)):
            raise DataValidationError("probability_samples must be probabilities in [0, 1]")
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 1):
        raise ConfigurationError(f"n_samples must be a positive integer, got {n_samples!r}")
    check_fraction("confidence", confidence)
    check_fraction("alpha", alpha)
    return ranking, probabilities, samples


def _intervals(
    draws: dict[str, np.ndarray], exact: dict[str, float], confidence: float
) -> dict[str, Any]:
    """``estimated_<metric>`` with its central ``confidence`` range over the label draws.

    The estimate is the closed form where ``exact`` has one, else the mean of the draws
    (NaN draws, label sets without fraud, left out).
    """
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
    return result


def reference_calibration(
    reference_scores: ArrayLike,
    reference_labels: ArrayLike,
    *,
    base_rate: tuple[int, int] | None = None,
    min_frauds: int = MIN_FRAUDS,
) -> IsotonicRegression | None:
    """Isotonic map from the model's scores to fraud probabilities, fitted on the reference.

    A sigmoid fitted on the few dozen frauds of a calibration period keeps the ranking
    (and so AUPRC) but under-states the top scores: on the simulator the training recipe's
    model flags alerts about 0.04 less likely to be fraud than they are. Label-free
    estimates rest on those probabilities, so they read the scores through this map, fitted
    on labelled transactions the model never trained on (the reference), as NannyML's CBPE
    does.

    Parameters
    ----------
    reference_scores, reference_labels : array-like of shape (n,)
        The model's scores on the reference and its 0/1 labels.
    base_rate : tuple of (int, int), optional
        ``(frauds, rows)`` of the model's labelled history. The reference's frauds and
        legitimate rows are then weighted to that fraud rate, so that the luck of the
        reference's own fraud count (a 60,000-row reference holds about 103 frauds, give
        or take 10) does not scale every probability.
    min_frauds : int, default :data:`fraudkit.science.metrics.MIN_FRAUDS`
        Fewer frauds than this give no map (``None``): the scores are then read as they are.

    Returns
    -------
    sklearn.isotonic.IsotonicRegression or None
        Fitted, clipping scores outside the reference's range.
    """
    y, scores = validate_labels_and_scores(reference_labels, reference_scores)
    n_fraud = int(y.sum())
    if n_fraud < min_frauds or n_fraud == y.size:
        return None
    weights = None
    if base_rate is not None:
        rate = check_base_rate(base_rate)
        observed = n_fraud / y.size
        weights = np.where(y == 1, rate / observed, (1 - rate) / (1 - observed))
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return isotonic.fit(scores, y, sample_weight=weights)


def bootstrap_calibrations(
    reference_scores: ArrayLike,
    reference_labels: ArrayLike,
    *,
    base_rate: tuple[int, int] | None = None,
    n_maps: int = 20,
    random_state: int = 0,
) -> list[IsotonicRegression]:
    """Maps of :func:`reference_calibration` refitted on bootstrap resamples of the reference.

    A map fitted on about a hundred frauds is itself uncertain by a few hundredths at the
    top; scoring a window through each of these maps gives
    :func:`estimate_performance` the ``probability_samples`` that carry that uncertainty
    into its intervals.

    Parameters
    ----------
    reference_scores, reference_labels : array-like of shape (n,)
        The model's scores on the reference and its 0/1 labels.
    base_rate : tuple of (int, int), optional
        As in :func:`reference_calibration`.
    n_maps : int, default 20
        Number of resamples.
    random_state : int, default 0
        Seed of the resampling.

    Returns
    -------
    list of sklearn.isotonic.IsotonicRegression
        Empty when the reference holds too few frauds for a map.
    """
    if not (isinstance(n_maps, int | np.integer) and n_maps >= 1):
        raise ConfigurationError(f"n_maps must be a positive integer, got {n_maps!r}")
    y, scores = validate_labels_and_scores(reference_labels, reference_scores)
    rng = np.random.default_rng(random_state)
    maps = []
    for _ in range(n_maps):
        rows = rng.integers(0, y.size, y.size)
        fitted = reference_calibration(scores[rows], y[rows], base_rate=base_rate)
        if fitted is None:
            return []
        maps.append(fitted)
    return maps
