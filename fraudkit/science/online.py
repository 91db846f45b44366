"""Traffic-split (online) A/B test of two fraud models.

Each transaction is served by one arm only, so the arms are independent samples. The
caught-fraud rate (recall) is compared with an anytime-valid sequential test
(:mod:`fraudkit.science.sequential`), which may be looked at every day and stopped at the first
winner, and with Fisher's exact test, valid for a single look at a horizon fixed in
advance; the fraud amount caught per transaction is compared with Welch's t-test. The
paired comparison on the same transactions is :mod:`fraudkit.science.abtest`.

:func:`online_power` plans a split: the power of the caught-fraud-rate test on a given
traffic and the traffic that gives 80 %, by simulation (each arm's frauds
``Binomial(arm traffic, fraud rate)``, its caught frauds ``Binomial(frauds, recall)``, the
deciding test run once at the horizon; a team that looks daily with the sequential test
can only stop sooner, so its power is at least the one given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import AMOUNT_COLUMN, LABEL_COLUMN
from fraudkit.science.abtest import ComparisonResult, check_thresholds, declare_winner, model_scores
from fraudkit.science.data import require_columns
from fraudkit.science.metrics import prefix_errors, validate_amounts
from fraudkit.science.sequential import (
    DEFAULT_MIXING_SD,
    FLAGGED_COLUMN,
    SequentialABTest,
    read_outcomes,
)

__all__ = [
    "ONLINE_COLUMNS",
    "OnlineABResult",
    "assign_traffic",
    "compare_online",
    "online_power",
    "round_traffic",
    "run_online_ab_test",
]

ONLINE_COLUMNS: tuple[str, ...] = (LABEL_COLUMN, AMOUNT_COLUMN, FLAGGED_COLUMN)


@dataclass(frozen=True)
class OnlineABResult(ComparisonResult):
    """Outcome of a traffic-split A/B test; each arm saw different transactions.

    ``winner`` is declared on the caught-fraud rate (recall) by the test named in
    ``decided_by``, whose p-value is ``p_value``: ``"sequential"`` (the anytime-valid
    mixture SPRT, valid however often the test is looked at) or ``"fisher"`` (Fisher's
    exact test, valid for one look at a horizon fixed in advance). Both p-values are
    always reported (``sequential_p_value``, ``fisher_p_value``) with the sequential
    test's statistic (``likelihood_ratio``, a winner when above ``1 / alpha``) and its
    confidence sequence for ``recall_b - recall_a`` (``recall_ci_low``,
    ``recall_ci_high``: covers the true difference at every look with probability at
    least ``1 - alpha``). The amount test (Welch, fixed horizon) and alert rates are
    reported alongside and decide nothing.
    """

    winner: str | None
    improvement: float
    p_value: float
    statistical_significance: bool
    n_a: int
    n_b: int
    n_fraud_a: int
    n_fraud_b: int
    caught_a: int
    caught_b: int
    recall_a: float
    recall_b: float
    recall_difference: float
    amount_caught_per_transaction_a: float
    amount_caught_per_transaction_b: float
    amount_difference: float
    amount_p_value: float
    alert_rate_a: float
    alert_rate_b: float
    alpha: float
    decided_by: str
    fisher_p_value: float
    sequential_p_value: float
    likelihood_ratio: float
    recall_ci_low: float
    recall_ci_high: float
    mixing_sd: float


def assign_traffic(
    n: int, split: float = 0.5, random_state: int | np.random.Generator | None = None
) -> np.ndarray:
    """Randomly route ``n`` transactions to arm B (True) or arm A (False).

    Parameters
    ----------
    n : int
        Number of transactions.
    split : float, default 0.5
        Probability that a transaction goes to arm B.
    random_state : int, numpy.random.Generator or None
        Seed of the assignment.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True where the transaction is served by model B.

    Raises
    ------
    ConfigurationError
        When ``split`` is not strictly between 0 and 1.
    """
    if not 0 < split < 1:
        raise ConfigurationError(
            f"split must lie strictly between 0 and 1 (share of traffic sent to B), got {split!r}"
        )
    return np.random.default_rng(random_state).random(n) < split


def _arm(outcomes: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraud flags, alerts and amount caught per transaction of one arm."""
    require_columns(outcomes, name, ONLINE_COLUMNS)
    fraud, flagged = read_outcomes(outcomes, name)
    with prefix_errors(name):
        amount = validate_amounts(outcomes[AMOUNT_COLUMN], fraud.size)
    if not fraud.any():
        raise DataValidationError(
            f"{name} holds no fraud, so its caught-fraud rate is undefined; run the test "
            "on more traffic"
        )
    return fraud, flagged, np.where(fraud & flagged, amount, 0.0)


def _check_sequential(sequential: Any) -> None:
    """Reject a ``sequential`` that is not a bool (a truthy string must not pick the test)."""
    if not isinstance(sequential, bool | np.bool_):
        raise ConfigurationError(
            f"sequential must be True or False, got {sequential!r}; pass True when the "
            "results may be looked at more than once"
        )


def _fisher_p_value(caught_a: int, n_fraud_a: int, caught_b: int, n_fraud_b: int) -> float:
    """Two-sided p-value of Fisher's exact test of equal caught-fraud rates."""
    return float(
        stats.fisher_exact(
            np.array([[caught_a, n_fraud_a - caught_a], [caught_b, n_fraud_b - caught_b]])
        )[1]
    )


def compare_online(
    outcomes_a: pd.DataFrame,
    outcomes_b: pd.DataFrame,
    *,
    alpha: float = 0.05,
    sequential: bool = True,
    mixing_sd: float = DEFAULT_MIXING_SD,
) -> OnlineABResult:
    """Compare the two arms of a traffic-split test (independent samples).

    The caught-fraud rate (recall: caught frauds / frauds in the arm) is compared by two
    tests, and ``sequential`` chooses which one declares the winner:

    * ``sequential=True`` (default): the anytime-valid mixture SPRT of
      :class:`fraudkit.science.sequential.SequentialABTest`, on the cumulative counts. Its
      guarantee holds however often the results are looked at: calling this function
      every day on the data so far and stopping at the first winner declares a false
      winner with probability at most ``alpha`` (up to a normal approximation, see
      :mod:`fraudkit.science.sequential`). Use it whenever the test may be (or has
      been) looked at before its planned end, which is the normal case online.
    * ``sequential=False``: Fisher's exact test, valid with few frauds but only for one
      look at a sample size fixed in advance; looked at daily for 30 days and stopped at
      the first ``p < alpha``, it declares a false winner several times more often than
      ``alpha`` (``benchmarks/bench_abtest.py``). In exchange it has more power at that
      single look.

    Both p-values and the sequential test's confidence sequence are reported either way.
    Called once per look, the sequential p-value here is ``1 / likelihood_ratio`` at this
    look, which is valid on its own; :class:`~fraudkit.science.sequential.SequentialABTest`
    additionally carries the running minimum and the running intersection of intervals
    across looks, so its verdict never flips back once a winner is declared.

    The fraud amount caught per transaction (the loss each arm prevents) is compared with
    Welch's t-test (fixed horizon, reported only); the alert rates (review workload) are
    reported too, since a lower threshold buys recall with alerts.

    Parameters
    ----------
    outcomes_a, outcomes_b : pandas.DataFrame
        One row per transaction served by the arm, with ``Class`` (0/1), ``Amount`` and
        ``flagged`` (the arm's decision, bool or 0/1).
    alpha : float, default 0.05
        Significance level of both tests; the confidence sequence has coverage
        ``1 - alpha``.
    sequential : bool, default True
        Whether the anytime-valid test declares the winner (True) or Fisher's exact test
        (False, only for a single pre-planned look).
    mixing_sd : float, default 0.1
        Mixing standard deviation of the sequential test, in recall units; see
        :class:`~fraudkit.science.sequential.SequentialABTest`.

    Returns
    -------
    OnlineABResult
        Per-arm counts and rates, ``winner`` ("A", "B" or None), ``p_value`` of the
        deciding test (named in ``decided_by``), ``improvement`` (relative change in
        recall of the winner over the loser, or of B over A),
        ``statistical_significance``, both recall p-values, the likelihood ratio, the
        confidence sequence and the amount test.

    Raises
    ------
    DataValidationError
        When a column is missing or invalid, or an arm saw no fraud.
    ConfigurationError
        When ``alpha`` is not in (0, 1), ``mixing_sd`` not in (0, 1] or ``sequential``
        not a bool.
    """
    # Checks alpha and mixing_sd.
    sequential_test = SequentialABTest(alpha=alpha, mixing_sd=mixing_sd)
    _check_sequential(sequential)
    (fraud_a, flagged_a, amount_a), (fraud_b, flagged_b, amount_b) = (
        _arm(outcomes_a, "outcomes_a"),
        _arm(outcomes_b, "outcomes_b"),
    )
    caught_a, caught_b = int(np.sum(fraud_a & flagged_a)), int(np.sum(fraud_b & flagged_b))
    n_fraud_a, n_fraud_b = int(fraud_a.sum()), int(fraud_b.sum())
    recall_a, recall_b = caught_a / n_fraud_a, caught_b / n_fraud_b
    fisher_p_value = _fisher_p_value(caught_a, n_fraud_a, caught_b, n_fraud_b)
    look = sequential_test.update_counts(n_fraud_a, caught_a, n_fraud_b, caught_b)
    p_value = look.p_value if sequential else fisher_p_value
    amount_p_value = float(stats.ttest_ind(amount_a, amount_b, equal_var=False).pvalue)
    significant = p_value < alpha
    winner, improvement = declare_winner(recall_a, recall_b, significant)
    return OnlineABResult(
        winner=winner,
        improvement=improvement,
        p_value=p_value,
        statistical_significance=significant,
        n_a=int(fraud_a.size),
        n_b=int(fraud_b.size),
        n_fraud_a=n_fraud_a,
        n_fraud_b=n_fraud_b,
        caught_a=caught_a,
        caught_b=caught_b,
        recall_a=recall_a,
        recall_b=recall_b,
        recall_difference=recall_b - recall_a,
        amount_caught_per_transaction_a=float(amount_a.mean()),
        amount_caught_per_transaction_b=float(amount_b.mean()),
        amount_difference=float(amount_b.mean() - amount_a.mean()),
        # Welch's statistic is undefined when both arms caught identical constant amounts.
        amount_p_value=1.0 if np.isnan(amount_p_value) else amount_p_value,
        alert_rate_a=float(flagged_a.mean()),
        alert_rate_b=float(flagged_b.mean()),
        alpha=float(alpha),
        decided_by="sequential" if sequential else "fisher",
        fisher_p_value=fisher_p_value,
        sequential_p_value=look.p_value,
        likelihood_ratio=look.likelihood_ratio,
        recall_ci_low=look.ci_low,
        recall_ci_high=look.ci_high,
        mixing_sd=sequential_test.mixing_sd,
    )


def _served(model: Any, data: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Outcome rows of the transactions one arm served."""
    return pd.DataFrame(
        {
            LABEL_COLUMN: data[LABEL_COLUMN].to_numpy(),
            AMOUNT_COLUMN: data[AMOUNT_COLUMN].to_numpy(),
            FLAGGED_COLUMN: model_scores(model, data) >= threshold,
        }
    )


def run_online_ab_test(
    model_a: Any,
    model_b: Any,
    test_data: pd.DataFrame,
    *,
    split: float = 0.5,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    alpha: float = 0.05,
    sequential: bool = True,
    mixing_sd: float = DEFAULT_MIXING_SD,
    random_state: int | np.random.Generator | None = None,
) -> OnlineABResult:
    """Simulate a traffic split: each model decides only the transactions routed to it.

    Parameters
    ----------
    model_a, model_b : object
        Fitted models, as :func:`fraudkit.science.abtest.run_ab_test` takes them.
    test_data : pandas.DataFrame
        Labelled transactions in the Kaggle schema (with ``Class`` and ``Amount``).
    split : float, default 0.5
        Share of traffic routed to model B.
    threshold_a, threshold_b : float, default 0.5
        Each arm's alert threshold (``score >= threshold``).
    alpha : float, default 0.05
        Significance level.
    sequential, mixing_sd
        Which test declares the winner, and the sequential test's tuning; as
        :func:`compare_online`.
    random_state : int, numpy.random.Generator or None
        Seed of the traffic assignment.

    Returns
    -------
    OnlineABResult
        As :func:`compare_online`.

    Raises
    ------
    DataValidationError
        When ``test_data`` lacks ``Class`` or ``Amount``, or an arm receives no fraud.
    ConfigurationError
        When ``split``, ``alpha``, ``sequential``, ``mixing_sd`` or a threshold is invalid,
        or a model is a string (a URI: load it first with
        ``fraudkit.tracking.registry.load_model``).
    """
    data = require_columns(test_data, "test_data", (LABEL_COLUMN, AMOUNT_COLUMN))
    threshold_a, threshold_b = check_thresholds(threshold_a, threshold_b)
    to_b = assign_traffic(len(data), split, random_state)
    return compare_online(
        _served(model_a, data[~to_b], threshold_a),
        _served(model_b, data[to_b], threshold_b),
        alpha=alpha,
        sequential=sequential,
        mixing_sd=mixing_sd,
    )


# ---------------------------------------------------------------- power and traffic


def round_traffic(n: float) -> int:
    """``n`` transactions rounded up to two significant digits: a plan, not a measurement.

    Parameters
    ----------
    n : float
        A number of transactions, at least 1 once rounded up.

    Returns
    -------
    int

    Raises
    ------
    ConfigurationError
        ``n`` is below 1 (after rounding up).

    Examples
    --------
    >>> round_traffic(4_417)
    4500
    """
    whole = math.ceil(n)
    if whole < 1:
        raise ConfigurationError(f"n must be a positive number of transactions, got {n!r}")
    step = 10 ** max(len(str(whole)) - 2, 0)
    return -(-whole // step) * step


def _online_wins(
    n: int, recalls: tuple[float, float], fraud_rate: float, settings: dict[str, Any]
) -> float:
    """Share of simulated traffic splits of ``n`` transactions won by the better arm."""
    rng = np.random.default_rng(settings["seed"])  # the same draws at every n: a smooth search
    size, split = settings["n_simulations"], settings["split"]
    arms = np.array([round(n * (1 - split)), round(n * split)])
    frauds = rng.binomial(arms[:, None], fraud_rate, (2, size))
    caught = rng.binomial(frauds, np.array(recalls)[:, None])
    better = "B" if recalls[1] > recalls[0] else "A"
    wins = 0
    for (n_a, n_b), (c_a, c_b) in zip(frauds.T, caught.T, strict=True):
        if not (n_a and n_b):
            continue
        if settings["sequential"]:
            test = SequentialABTest(alpha=settings["alpha"], mixing_sd=settings["mixing_sd"])
            winner = test.update_counts(int(n_a), int(c_a), int(n_b), int(c_b)).winner
        else:
            significant = (
                _fisher_p_value(int(c_a), int(n_a), int(c_b), int(n_b)) < settings["alpha"]
            )
            winner, _ = declare_winner(c_a / n_a, c_b / n_b, significant)
        wins += winner == better
    return wins / size


def online_power(
    recall_a: float,
    recall_b: float,
    fraud_rate: float,
    n_transactions: int,
    *,
    alpha: float = 0.05,
    target_power: float = 0.8,
    split: float = 0.5,
    sequential: bool = True,
    mixing_sd: float = DEFAULT_MIXING_SD,
    n_simulations: int = 400,
    random_state: int | None = 0,
) -> tuple[float, int | None]:
    """Power of the online caught-fraud-rate test and the traffic for ``target_power``.

    Parameters
    ----------
    recall_a, recall_b : float
        Each arm's caught-fraud rate at its threshold.
    fraud_rate : float
        Share of fraud in the traffic.
    n_transactions : int
        Traffic of the split, both arms together.
    alpha, target_power : float
        Level of the test and power wanted.
    split : float, default 0.5
        Share of traffic sent to B.
    sequential, mixing_sd
        The deciding test, as :func:`fraudkit.science.online.compare_online`.
    n_simulations : int, default 400
        Simulated splits per size.
    random_state : int or None, default 0
        Seed of the simulations.

    Returns
    -------
    tuple of (float, int or None)
        Power on ``n_transactions`` (the better arm declared the winner), and the traffic
        (both arms) giving ``target_power``, rounded up to two significant digits; None
        when the recalls are equal or it exceeds 10 billion transactions.

    Raises
    ------
    ConfigurationError
        When a rate is not in [0, 1], ``fraud_rate`` or ``split`` not in (0, 1), ``alpha``
        and ``target_power`` not ordered in (0, 1), ``n_transactions`` below 2,
        ``n_simulations`` below 1 or ``sequential`` not a bool.
    """
    for name, value in (("recall_a", recall_a), ("recall_b", recall_b)):
        if not 0 <= value <= 1:
            raise ConfigurationError(f"{name} must be a caught-fraud rate in [0, 1], got {value!r}")
    for name, value in (("fraud_rate", fraud_rate), ("split", split)):
        if not 0 < value < 1:
            raise ConfigurationError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    if not 0 < alpha < target_power < 1:
        raise ConfigurationError(
            f"alpha and target_power must satisfy 0 < alpha < target_power < 1, got "
            f"alpha={alpha!r}, target_power={target_power!r}; 0.05 and 0.8 are usual"
        )
    for name, value, least in (
        ("n_transactions", n_transactions, 2),
        ("n_simulations", n_simulations, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ConfigurationError(f"{name} must be a whole number >= {least}, got {value!r}")
    _check_sequential(sequential)
    settings = {
        "alpha": alpha,
        "split": split,
        "sequential": sequential,
        "mixing_sd": mixing_sd,
        "n_simulations": n_simulations,
        "seed": int(np.random.default_rng(random_state).integers(2**31)),
    }
    recalls = (float(recall_a), float(recall_b))
    power = _online_wins(n_transactions, recalls, fraud_rate, settings)
    gap = abs(recalls[1] - recalls[0])
    if gap == 0:
        return power, None
    # Two-proportion normal approximation for the frauds an arm needs, then bisection in
    # log traffic on the simulated power (the same draws at each size keep it monotone).
    spread = sum(r * (1 - r) for r in recalls) or 1e-6
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)
    low = high = max(z**2 * spread / gap**2 / fraud_rate * 2, 10.0)
    while _online_wins(int(low), recalls, fraud_rate, settings) >= target_power and low > 10:
        low /= 2
    while _online_wins(int(high), recalls, fraud_rate, settings) < target_power:
        high *= 2
        if high > 1e10:
            return power, None
    while high / low > 1.05:
        middle = math.sqrt(low * high)
        if _online_wins(int(middle), recalls, fraud_rate, settings) >= target_power:
            high = middle
        else:
            low = middle
    return power, round_traffic(math.ceil(high))
