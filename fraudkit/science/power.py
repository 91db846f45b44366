"""Power and required traffic of the A/B tests, simulated from calibrated scores.

A verdict of "no significant difference" means little unless the test could have seen a
difference worth having. This module answers, for the paired offline test of
:func:`fraudkit.science.abtest.compare_scores` and for the caught-fraud-rate test of the
online traffic split (:func:`fraudkit.science.online.compare_online`): what power did the
test have, and how much traffic would give ``target_power`` (80 %)?

Offline design (the truth under the alternative):

* The models' scores are calibrated fraud probabilities, so each says how labels would
  fall. The truth is taken from the log-odds family joining them,
  ``logit q_w = (1 - w) logit p_A + w logit p_B + c``: ``w = 0`` makes model A the truth,
  ``w = 1`` model B; values outside [0, 1] move the truth further in the same direction,
  for differences larger than the scores themselves imply. The intercept ``c`` keeps the
  expected fraud count at the one observed, since the fraud count drives power.
* ``w`` is solved so that the *population* difference of the metric (B − A, computed
  exactly under ``q_w`` over the observed transactions, not from one label draw) equals
  the difference tested: the observed one, or ``min_detectable_difference``. At a
  difference of 0 the test should reject about ``alpha`` of the time.
* A simulated A/B test draws ``n`` transactions with replacement from the observed ones
  (their two scores), labels from ``q_w``, and runs the permutation test of
  ``compare_scores`` on them (:func:`fraudkit.science.abtest.permutation_differences`):
  each test against its own permutation null (``n_permutations`` of them; its ``1 -
  alpha`` quantile is the critical value), because the null's width moves with the
  sample and with the difference in it. A win counts when the test is significant in the
  direction of the tested difference.
* Required traffic: at ``n0`` each simulated test has a margin, its critical value
  minus its centred difference; with both shrinking as ``1 / sqrt(n)`` and the mean
  difference ``m`` fixed, ``target_power`` of the tests win at ``n = n0 (Q / m)^2``, ``Q``
  the ``target_power`` quantile of the margins. The simulation is rerun there and the answer
  re-solved until a round moves it by less than 10 % (at most twice); the last answer,
  rounded up to two significant digits, is the required traffic, and the last round's
  tests, rescaled to it, give ``power_at_required``. ``benchmarks/bench_abtest.py`` checks
  it on the simulator, where the truth is known.

Online: :func:`fraudkit.science.online.online_power`, at the recalls the two models'
thresholds give on the observed transactions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.abtest import (
    ABTestResult,
    check_metric,
    check_thresholds,
    paired_inputs,
    permutation_differences,
)
from fraudkit.science.online import online_power, round_traffic

__all__ = [
    "DEFAULT_MIN_DETECTABLE_DIFFERENCE",
    "DEFAULT_PERMUTATIONS",
    "PowerAnalysis",
    "analyse_power",
    "implied_truth",
    "simulated_power",
]

# AUPRC points: a gain fraud teams act on, and one a test on ~100,000 transactions at the
# Kaggle fraud rate has a fair chance to see for models of this kit's quality.
DEFAULT_MIN_DETECTABLE_DIFFERENCE = 0.05
# Scores are clipped this far from 0 and 1 so their log-odds are finite.
_EPSILON = 1e-9
# Range of the log-odds mixture weight searched for a difference (see the module notes).
_WEIGHTS = (-4.0, 5.0)
# The normal model's answer is accepted when a new simulation moves it by less than this.
_SETTLED = 0.1
_MAX_REFINEMENTS = 2
# Simulated sizes are capped at this many transactions x simulations: beyond it (about
# 30 s a size on two cores) the required traffic is extrapolated from the tests at the
# observed size, and power_at_required is NaN.
_MAX_CELLS = 30_000_000
# Permutations per simulated test: each test's own null sets its critical value (its 95 %
# quantile), as compare_scores does with its thousands; 100 keep that quantile within a
# few per cent at a tenth of a second per test on 100,000 transactions.
DEFAULT_PERMUTATIONS = 100


@dataclass(frozen=True)
class PowerAnalysis:
    """Power of an A/B comparison and the traffic it needs, offline and online.

    Offline (the paired test that declared ``winner``): ``power_observed`` is the power
    the test had, on ``n_transactions``, to detect a true difference equal to the one it
    saw; ``power_at_min_difference`` its power for ``min_detectable_difference`` (B better
    by that many metric points); ``required_transactions`` the traffic giving
    ``target_power`` for that difference (None when these scores cannot express it) and
    ``power_at_required`` the power there, from the simulated tests at the last size
    simulated, within 10 % of it (NaN when the size was too large to simulate).

    Online (a traffic split judged on the caught-fraud rate): ``online_power`` on the same
    traffic split between the arms, and ``online_required_transactions`` (both arms
    together) for ``target_power`` at the recall difference these models show.

    ``verdict_note`` says what the verdict means given the power: "inconclusive: needs
    about N transactions" when there is no winner and the power at the minimum detectable
    difference is below ``target_power``.
    """

    metric: str
    alpha: float
    target_power: float
    n_transactions: int
    n_fraud: int
    winner: str | None
    observed_difference: float
    power_observed: float
    min_detectable_difference: float
    power_at_min_difference: float
    required_transactions: int | None
    power_at_required: float
    recall_a: float
    recall_b: float
    online_power: float
    online_required_transactions: int | None
    n_simulations: int
    verdict_note: str

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values."""
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The numeric results to log, under the names the glossary explains.

        Returns
        -------
        dict of str to float
            ``power_observed``, ``power_at_min_difference``, ``required_transactions``,
            ``power_at_required``, ``online_power`` and ``online_required_transactions``,
            each left out when it is None or NaN.
        """
        names = (
            "power_observed",
            "power_at_min_difference",
            "required_transactions",
            "power_at_required",
            "online_power",
            "online_required_transactions",
        )
        values = {name: getattr(self, name) for name in names}
        # None (no such traffic) and NaN (not simulated) are left out, not logged as gaps.
        return {
            name: float(value)
            for name, value in values.items()
            if value is not None and math.isfinite(value)
        }


# ------------------------------------------------------------------- the truth


class _Population:
    """The observed transactions, their scores, and the truths their scores imply."""

    def __init__(self, y: np.ndarray, scores: np.ndarray, metric: str, thresholds: np.ndarray):
        self.y, self.scores, self.metric, self.thresholds = y, scores, metric, thresholds
        self.fraud_rate = float(y.mean())
        clipped = np.clip(scores, _EPSILON, 1 - _EPSILON)
        self.log_odds = logit(clipped)
        # Per model, transactions in descending score order and the tie group of each, so
        # a population metric under any truth is one bincount and a cumulative sum.
        self.order = [np.argsort(-scores[:, m], kind="stable") for m in (0, 1)]
        self.groups = []
        for model, order in enumerate(self.order):
            ranked = scores[order, model]
            self.groups.append(np.r_[0, np.cumsum(ranked[1:] != ranked[:-1])])

    def truth(self, weight: float) -> np.ndarray:
        """Fraud probability ``q_w`` with the observed fraud rate (Newton on the intercept)."""
        mixed = (1 - weight) * self.log_odds[:, 0] + weight * self.log_odds[:, 1]
        intercept = 0.0
        for _ in range(50):
            q = expit(mixed + intercept)
            gap = q.mean() - self.fraud_rate
            if abs(gap) < 1e-12:
                break
            intercept -= gap / max(float((q * (1 - q)).mean()), 1e-300)
        return expit(mixed + intercept)

    def metric_value(self, q: np.ndarray, model: int) -> float:
        """Population value of the metric of one model when the truth is ``q``."""
        if self.metric == "recall":
            return float(q[self.scores[:, model] >= self.thresholds[model]].sum() / q.sum())
        order, groups = self.order[model], self.groups[model]
        fraud = np.bincount(groups, weights=q[order])
        rows = np.bincount(groups).astype(float)
        if self.metric == "average_precision":
            # Expected frauds over rows at or above each score: precision at that threshold.
            return float((fraud * fraud.cumsum() / rows.cumsum()).sum() / fraud.sum())
        legit = rows - fraud  # roc_auc: legitimate mass strictly below, ties counting half
        below = legit.sum() - legit.cumsum()
        return float((fraud * (below + legit / 2)).sum() / (fraud.sum() * legit.sum()))

    def recalls(self) -> tuple[float, float]:
        """Observed share of frauds at or above each model's threshold."""
        frauds = self.scores[self.y == 1]
        recall_a, recall_b = (frauds >= self.thresholds).mean(axis=0)
        return float(recall_a), float(recall_b)

    def difference(self, weight: float) -> float:
        q = self.truth(weight)
        return self.metric_value(q, 1) - self.metric_value(q, 0)

    def weight_for(self, difference: float) -> float | None:
        """Mixture weight whose population difference is ``difference``; None if none is.

        The difference need not be monotone in the weight far outside [0, 1] (both models
        lose to an extreme truth), so a grid brackets the crossing nearest to [0, 1] and
        bisection refines it.
        """
        grid = np.linspace(*_WEIGHTS, 19)
        values = np.array([self.difference(weight) for weight in grid]) - difference
        crossings = np.flatnonzero(np.sign(values[:-1]) != np.sign(values[1:]))
        if crossings.size == 0:
            return None
        start = crossings[np.argmin(np.abs(grid[crossings] + 0.25 - 0.5))]
        low, high = float(grid[start]), float(grid[start + 1])
        rising = values[start + 1] > values[start]
        for _ in range(30):
            middle = (low + high) / 2
            if (self.difference(middle) < difference) == rising:
                low = middle
            else:
                high = middle
        return float((low + high) / 2)


# ------------------------------------------------------------- offline simulation


@dataclass(frozen=True)
class _Simulated:
    """Simulated A/B tests at one size: power and what the size search extrapolates from."""

    n: int
    power: float
    mean: float  # of the difference, signed toward the tested direction
    centred: np.ndarray  # the signed differences minus their mean
    critical: np.ndarray  # each simulated test's own critical value
    n_tests: int  # simulated tests, those without a fraud to rank included (never won)

    def power_at(self, n: int) -> float:
        """Power at ``n`` transactions if only the spread moves, as ``1 / sqrt(n)``."""
        reach = math.sqrt(n / self.n) * self.mean
        return float(np.sum(self.critical - self.centred < reach) / self.n_tests)

    def required(self, target_power: float) -> int | None:
        """Transactions for ``target_power`` if only the spread shrinks, as ``1 / sqrt(n)``.

        At ``k`` times the size's ``1 / sqrt(n)`` scale a simulated test wins when
        ``mean + centred / k > critical / k``, that is when ``critical - centred < k *
        mean``: the ``target_power`` quantile of ``critical - centred`` over ``mean`` is the
        ``k`` wanted. It uses the simulated tests' own distribution, not a normal one, so
        at ``k = 1`` it agrees with the counted power.
        """
        if not self.mean > 0:
            return None
        scale = float(np.quantile(self.critical - self.centred, target_power)) / self.mean
        return max(math.ceil(self.n * max(scale, 0.0) ** 2), 1)


def _simulate(
    population: _Population,
    q: np.ndarray,
    n: int,
    direction: int,
    settings: dict[str, Any],
    seed: int,
) -> _Simulated:
    """Run ``n_simulations`` A/B tests of ``n`` transactions drawn with labels from ``q``."""
    rng = np.random.default_rng(seed)
    size, n_permutations = settings["n_simulations"], settings["n_permutations"]
    observed, permuted = np.zeros(size), np.zeros((size, n_permutations))
    testable = np.zeros(size, dtype=bool)
    for simulation in range(size):
        rows = rng.integers(0, q.size, n)
        y = (rng.random(n) < q[rows]).astype(np.int64)
        n_fraud = int(y.sum())
        if n_fraud < 2 or n_fraud == n:  # no ranking to compare: the test cannot win
            continue
        testable[simulation] = True
        observed[simulation], permuted[simulation] = permutation_differences(
            y,
            population.scores[rows],
            metric=population.metric,
            thresholds=population.thresholds,
            n_permutations=n_permutations,
            rng=rng,
        )
    if not testable.any():
        return _Simulated(n, 0.0, 0.0, np.zeros(1), np.zeros(1), size)
    # Each test against its own permutation null, as compare_scores tests: the width of
    # the null moves with the sample (its frauds), and with the difference seen in it, so
    # one pooled critical value would misstate the power (by 0.1 at 80 % in simulation).
    critical = np.quantile(np.abs(permuted[testable]), 1 - settings["alpha"], axis=1)
    signed = (observed * direction if direction else np.abs(observed))[testable]
    return _Simulated(
        n=n,
        power=float((signed > critical).sum() / size),
        mean=float(signed.mean()),
        centred=signed - signed.mean(),
        critical=critical,
        n_tests=size,
    )


def _search(
    population: _Population, q: np.ndarray, start: _Simulated, settings: dict[str, Any]
) -> tuple[int | None, float]:
    """Traffic for the target power, refined by simulation, and the power there.

    Each round simulates at the current answer and re-solves from those tests. Once a
    round moves the answer by less than :data:`_SETTLED`, the re-solved size is the answer
    and its power is read from that round's tests, at most 10 % away in size.
    """
    target = settings["target_power"]
    current, n = start, start.required(target)
    for step in range(_MAX_REFINEMENTS):
        if n is None or n * settings["n_simulations"] > _MAX_CELLS:
            return (None if n is None else round_traffic(n)), math.nan
        n = round_traffic(n)
        current = _simulate(population, q, n, 1, settings, settings["seed"] + 1 + step)
        updated = current.required(target)
        if updated is None:
            return n, current.power
        if abs(updated / n - 1) < _SETTLED:
            return round_traffic(updated), current.power_at(round_traffic(updated))
        n = updated
    return current.n, current.power  # not settled: the last size simulated, as measured


def _check_settings(
    result: Any, min_detectable_difference: float, target_power: float, n_simulations: int
) -> None:
    """Reject settings the analysis cannot use, naming the fix."""
    if not isinstance(result, ABTestResult):
        raise ConfigurationError(
            f"result must be the ABTestResult of compare_scores on the same transactions, got "
            f"{type(result).__name__}; run compare_scores first and pass what it returns"
        )
    if not (math.isfinite(min_detectable_difference) and min_detectable_difference > 0):
        raise ConfigurationError(
            f"min_detectable_difference must be a positive number of {result.metric} points "
            f"(e.g. {DEFAULT_MIN_DETECTABLE_DIFFERENCE}), got {min_detectable_difference!r}"
        )
    if not result.alpha < target_power < 1:
        raise ConfigurationError(
            f"target_power must lie between alpha={result.alpha} and 1, got "
            f"{target_power!r}; 0.8 is usual"
        )
    if not isinstance(n_simulations, int | np.integer) or n_simulations < 20:
        raise ConfigurationError(
            f"n_simulations must be an integer of at least 20, got {n_simulations!r}"
        )


def _offline(
    population: _Population,
    result: ABTestResult,
    min_detectable_difference: float,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Offline fields of :class:`PowerAnalysis` (see the module notes for the design)."""
    simulated: dict[str, _Simulated | None] = {}
    truths: dict[str, np.ndarray | None] = {}
    for name, difference in (("observed", result.difference), ("min", min_detectable_difference)):
        weight = population.weight_for(difference)
        truths[name] = q = None if weight is None else population.truth(weight)
        direction = int(np.sign(difference))
        simulated[name] = (
            None
            if q is None
            else _simulate(population, q, result.n, direction, settings, settings["seed"])
        )
    at_min, q_min = simulated["min"], truths["min"]
    required, power_at_required = None, math.nan
    if at_min is not None and q_min is not None:
        required, power_at_required = _search(population, q_min, at_min, settings)
    return {
        "power_observed": math.nan
        if simulated["observed"] is None
        else simulated["observed"].power,
        "power_at_min_difference": math.nan if at_min is None else at_min.power,
        "required_transactions": required,
        "power_at_required": power_at_required,
    }


def implied_truth(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    difference: float,
    *,
    metric: str = "average_precision",
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
) -> np.ndarray | None:
    """The fraud probability per transaction under which B − A equals ``difference``.

    The member of the log-odds family of the module notes with the observed fraud rate
    whose population difference in ``metric`` is ``difference``.

    Parameters
    ----------
    y_true, scores_a, scores_b : array-like of shape (n,)
        Labels (for the fraud rate) and the two models' calibrated scores.
    difference : float
        The difference B − A the truth should have.
    metric : str, default "average_precision"
        One of :data:`fraudkit.science.abtest.METRICS`.
    threshold_a, threshold_b : float, default 0.5
        Thresholds (used by ``metric="recall"``).

    Returns
    -------
    numpy.ndarray or None
        ``q`` of shape (n,), or None when no member of the family has that difference.
    """
    population = _population(y_true, scores_a, scores_b, metric, threshold_a, threshold_b)
    weight = population.weight_for(difference)
    return None if weight is None else population.truth(weight)


def simulated_power(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    difference: float,
    n_transactions: int,
    *,
    metric: str = "average_precision",
    alpha: float = 0.05,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    n_simulations: int = 100,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    random_state: int | None = 0,
) -> float:
    """Simulated power of the paired test at one size, for a true ``difference``.

    Parameters
    ----------
    y_true, scores_a, scores_b : array-like of shape (n,)
        Observed labels and calibrated scores (see :func:`implied_truth`).
    difference : float
        True B − A; 0 gives the rate of false winners (about ``alpha``).
    n_transactions : int
        Size of each simulated A/B test.
    metric, alpha, threshold_a, threshold_b
        As :func:`fraudkit.science.abtest.compare_scores`.
    n_simulations, n_permutations : int
        Simulated tests, and permutations per test (each test's own critical value).
    random_state : int or None, default 0
        Seed of the simulations.

    Returns
    -------
    float
        Share of simulated tests significant in the direction of ``difference`` (either
        direction when it is 0); NaN when no truth implied by the scores has it.

    Raises
    ------
    ConfigurationError, DataValidationError
        When a setting or an input is invalid.
    """
    if not 0 < alpha < 1 or n_transactions < 2:
        raise ConfigurationError(
            f"alpha must lie in (0, 1) and n_transactions be at least 2, got alpha={alpha!r}, "
            f"n_transactions={n_transactions!r}"
        )
    population = _population(y_true, scores_a, scores_b, metric, threshold_a, threshold_b)
    weight = population.weight_for(difference)
    if weight is None:
        return math.nan
    settings = {"alpha": alpha, "n_simulations": n_simulations, "n_permutations": n_permutations}
    seed = int(np.random.default_rng(random_state).integers(2**31))
    q = population.truth(weight)
    return _simulate(
        population, q, int(n_transactions), int(np.sign(difference)), settings, seed
    ).power


def _population(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    metric: str,
    threshold_a: float,
    threshold_b: float,
) -> _Population:
    """Validated inputs as a :class:`_Population`."""
    check_metric(metric)
    y, scores = paired_inputs(y_true, scores_a, scores_b)
    return _Population(y, scores, metric, check_thresholds(threshold_a, threshold_b))


# ------------------------------------------------------------------------- both


def _verdict_note(winner: str | None, analysis: dict[str, Any], settings: dict[str, Any]) -> str:
    """What the verdict means, given the power it had."""
    difference, target = settings["min_detectable_difference"], settings["target_power"]
    power, required = analysis["power_at_min_difference"], analysis["required_transactions"]
    if math.isnan(power):
        return (
            f"{'no winner' if winner is None else winner + ' won'}; no truth these scores imply "
            f"differs by {difference}, so the power to detect it cannot be simulated"
        )
    if winner is not None:
        return (
            f"{winner} won; the test had {power:.0%} power to detect a difference of {difference}"
        )
    if power >= target:
        return (
            f"no winner, and the test had {power:.0%} power to detect a difference of "
            f"{difference}: a difference that large is unlikely"
        )
    needs = f"about {required:,} transactions" if required else "more traffic than simulated"
    return (
        f"inconclusive: needs {needs} (the test had {power:.0%} power to detect a "
        f"difference of {difference}; {target:.0%} wanted)"
    )


def analyse_power(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    result: ABTestResult,
    *,
    min_detectable_difference: float = DEFAULT_MIN_DETECTABLE_DIFFERENCE,
    target_power: float = 0.8,
    n_simulations: int = 200,
    random_state: int | None = 0,
) -> PowerAnalysis:
    """Offline and online power of an A/B comparison, and the traffic each needs.

    Parameters
    ----------
    y_true, scores_a, scores_b : array-like of shape (n,)
        The labels and calibrated scores ``result`` was computed on.
    result : ABTestResult
        What :func:`~fraudkit.science.abtest.compare_scores` returned on them.
    min_detectable_difference : float, default 0.05
        Smallest difference in ``result.metric`` worth detecting (B better by that much).
    target_power : float, default 0.8
        Power the required traffic should give.
    n_simulations : int, default 200
        Simulated offline A/B tests per size (online splits: twice as many); the
        Monte Carlo error of the power and of the required traffic falls as one over its
        square root.
    random_state : int or None, default 0
        Seed of the simulations.

    Returns
    -------
    PowerAnalysis
        Offline power at the observed and the minimum detectable difference, required
        transactions, the online split's power and traffic (sequential test, at the
        recalls the thresholds give), and ``verdict_note``.

    Raises
    ------
    ConfigurationError
        When ``result`` is not an ABTestResult, ``min_detectable_difference`` is not
        positive, ``target_power`` not in (alpha, 1) or ``n_simulations`` below 20.
    DataValidationError
        When the labels or scores are invalid or not those ``result`` compared.
    """
    _check_settings(result, min_detectable_difference, target_power, n_simulations)
    thresholds = (result.threshold_a, result.threshold_b)
    population = _population(y_true, scores_a, scores_b, result.metric, *thresholds)
    if (
        population.scores.shape[0] != result.n
        or round(population.fraud_rate * result.n) != result.n_fraud
    ):
        raise DataValidationError(
            f"result was computed on {result.n:,} transactions with {result.n_fraud} frauds, "
            f"these are {population.scores.shape[0]:,}; pass the labels and scores that "
            "compare_scores compared"
        )
    settings = {
        "alpha": result.alpha,
        "target_power": target_power,
        "n_simulations": n_simulations,
        "n_permutations": DEFAULT_PERMUTATIONS,
        "seed": int(np.random.default_rng(random_state).integers(2**31)),
        "min_detectable_difference": min_detectable_difference,
    }
    offline = _offline(population, result, min_detectable_difference, settings)
    recall_a, recall_b = population.recalls()
    online, online_required = online_power(
        recall_a,
        recall_b,
        result.n_fraud / result.n,
        result.n,
        alpha=result.alpha,
        target_power=target_power,
        n_simulations=2 * n_simulations,
        random_state=random_state,
    )
    return PowerAnalysis(
        metric=result.metric,
        alpha=result.alpha,
        target_power=target_power,
        n_transactions=result.n,
        n_fraud=result.n_fraud,
        winner=result.winner,
        observed_difference=result.difference,
        **offline,
        min_detectable_difference=min_detectable_difference,
        recall_a=recall_a,
        recall_b=recall_b,
        online_power=online,
        online_required_transactions=online_required,
        n_simulations=n_simulations,
        verdict_note=_verdict_note(result.winner, offline, settings),
    )
