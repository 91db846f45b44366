"""Paired (offline) A/B comparison of two fraud models on the same labelled transactions.

Both models score the same transactions. The difference in the chosen metric (B − A) gets
a paired, class-stratified bootstrap confidence interval and a paired permutation p-value;
McNemar's exact test (Dietterich 1998) on the two models' decisions at their operating
thresholds is reported alongside. The traffic-split (online) test, where each transaction
is served by one arm only, is :mod:`fraudkit.science.online`; it shares this module's result base
and helpers.

Resampling is vectorised over chunks of resamples, with no scikit-learn call per
resample. Average precision and ROC AUC need, for each fraud, only the number of frauds
and of legitimate transactions scoring at or above (and strictly above) its score. Every
score is therefore placed once on the grid of fraud scores; a resample, which only
changes which transactions count (bootstrap) or which model's score each one contributes
(permutation), is then a ``bincount`` over grid slots and a cumulative sum.

Models are passed fitted (scikit-learn or pyfunc-like). A registered model is loaded
first, in the MLflow layer (``fraudkit.tracking.registry.load_model(uri)``): this module, like
every science module, never imports MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from statsmodels.stats.contingency_tables import mcnemar

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.data import require_columns
from fraudkit.science.metrics import prefix_errors, validate_labels_and_scores
from fraudkit.science.models import predict_scores

__all__ = [
    "METRICS",
    "ABTestResult",
    "ComparisonResult",
    "check_metric",
    "check_thresholds",
    "compare_scores",
    "declare_winner",
    "model_scores",
    "paired_inputs",
    "permutation_differences",
    "run_ab_test",
]

METRICS: tuple[str, ...] = ("average_precision", "roc_auc", "recall")
# Cells (resamples x transactions) per chunk: enough to amortise numpy's per-call overhead
# on small samples, few enough that a chunk's arrays (a few MB) stay in cache-friendly sizes.
_CHUNK_CELLS = 500_000
# Two resampled differences closer than this count as equal (float summation noise).
_TIE_TOLERANCE = 1e-12


# --------------------------------------------------------------------------- results


class ComparisonResult:
    """Base of the A/B results: dict views of a frozen dataclass.

    ``result["winner"]`` works as in the seed; :class:`ABTestResult` and
    :class:`fraudkit.science.online.OnlineABResult` derive from it.
    """

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values, the seed's keys first."""
        return asdict(self)  # type: ignore[arg-type]  # every subclass is a dataclass

    def summary(self) -> dict[str, Any]:
        """The fields under the names a run summary logs and a report shows.

        As :meth:`to_dict`, in the same order, but the seed's ``improvement`` is named
        ``relative_improvement``: it is the winner's metric over the loser's minus 1 (0.25
        means 25 % better), and a bare "improvement" next to a metric reads as an absolute
        change of that metric. The attribute and ``to_dict()`` keep the seed's name.

        Returns
        -------
        dict
            Plain Python values, JSON-serialisable.
        """
        renamed = {"improvement": "relative_improvement"}
        return {renamed.get(key, key): value for key, value in self.to_dict().items()}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


@dataclass(frozen=True)
class ABTestResult(ComparisonResult):
    """Outcome of a paired comparison of model A and model B on the same transactions.

    ``winner`` is declared by the permutation test on ``metric`` (``p_value``);
    ``mcnemar_p_value`` and the agreement table of correct decisions are reported
    alongside.
    """

    winner: str | None
    improvement: float
    p_value: float
    statistical_significance: bool
    metric: str
    metric_a: float
    metric_b: float
    difference: float
    ci_low: float
    ci_high: float
    mcnemar_p_value: float
    both_correct: int
    only_a_correct: int
    only_b_correct: int
    both_wrong: int
    n: int
    n_fraud: int
    alpha: float
    n_resamples: int
    threshold_a: float
    threshold_b: float

    @property
    def mcnemar_table(self) -> np.ndarray:
        """2x2 table: rows A correct/wrong, columns B correct/wrong."""
        return np.array(
            [[self.both_correct, self.only_a_correct], [self.only_b_correct, self.both_wrong]]
        )


# ------------------------------------------------------------------ resampling engine


class _PairedScores:
    """Labels and both models' scores, prepared for vectorised resampling of ``metric``.

    The ranking metrics only need counts at the frauds' scores, so every score is mapped
    once to a slot on that grid (slot ``2q + 1`` holds scores equal to the ``q``-th grid
    value, slot ``2q`` those strictly between it and the previous one). A resample is then
    one ``bincount`` of slots per class and model, whatever the number of transactions.
    Arrays indexed ``[model]`` hold model A in row 0 and model B in row 1.
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray, metric: str, thresholds: np.ndarray):
        self.metric = metric
        fraud, legit = scores[y == 1].T, scores[y == 0].T
        self.n_fraud, self.n_legit = fraud.shape[1], legit.shape[1]
        self._work = np.empty(0, dtype=np.intp)
        if metric == "recall":
            self.own = (fraud >= thresholds[:, None]).astype(float)
            return
        grid = np.unique(fraud)
        self.n_slots = 2 * grid.size + 1
        self.own = 2 * np.searchsorted(grid, fraud) + 1
        self.fraud_slots, self.legit_slots = _slots(grid, fraud), _slots(grid, legit)
        # Tails over both models' scores together: a permutation splits them between arms.
        self.fraud_both = self._tails(self.fraud_slots.reshape(1, -1).copy())
        self.legit_both = self._tails(self.legit_slots.reshape(1, -1).copy())

    def _tails(self, slots: np.ndarray) -> np.ndarray:
        """Per row, the number of scores in each slot or above (one row per resample).

        ``slots`` is overwritten: callers pass fresh or work arrays (see :meth:`_scratch`).
        """
        rows = slots.shape[0]
        slots += (np.arange(rows) * self.n_slots)[:, None]
        counts = np.bincount(slots.ravel(), minlength=rows * self.n_slots)
        return counts.reshape(rows, self.n_slots)[:, ::-1].cumsum(axis=1)[:, ::-1]

    def _scratch(self, shape: tuple[int, ...]) -> np.ndarray:
        """A chunk-sized work array, reused across chunks.

        Fresh arrays of this size are mapped from the OS page by page, and those page
        faults cost as much as the arithmetic done in them.
        """
        if self._work.shape != shape:
            self._work = np.empty(shape, dtype=np.intp)
        return self._work

    def _value(
        self, own: np.ndarray, fraud_tails: np.ndarray | None, legit_tails: np.ndarray | None
    ) -> np.ndarray:
        """Metric per row; ``own`` holds each counted fraud's slot (its decision for recall)."""
        if self.metric == "recall":
            return own.mean(axis=1)
        assert fraud_tails is not None and legit_tails is not None  # ranking metrics pass both
        legit_ge = np.take_along_axis(legit_tails, own, axis=1)
        if self.metric == "roc_auc":
            # Mann-Whitney: legitimate transactions below each fraud, ties counting half.
            legit_gt = np.take_along_axis(legit_tails, own + 1, axis=1)
            n_legit = legit_tails[:, :1]
            return (n_legit - (legit_ge + legit_gt) / 2).mean(axis=1) / n_legit[:, 0]
        # scikit-learn's step-wise AP: the mean over frauds of the precision at the fraud's
        # own score, counting every transaction tied with it (ties form one threshold).
        fraud_ge = np.take_along_axis(fraud_tails, own, axis=1)
        return (fraud_ge / (fraud_ge + legit_ge)).mean(axis=1)

    def observed(self) -> np.ndarray:
        """Metric of A and B on the data as given."""
        return self.resampled(np.arange(self.n_fraud)[None], np.arange(self.n_legit)[None])[0]

    def bootstrap(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` class-stratified bootstrap resamples: metric of A and B in columns."""
        return self.resampled(
            rng.integers(0, self.n_fraud, (size, self.n_fraud)),
            rng.integers(0, self.n_legit, (size, self.n_legit)),
        )

    def permute(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` random swaps of A's and B's score per transaction."""
        return self.swapped(
            rng.integers(0, 2, (size, self.n_fraud), dtype=bool),
            rng.integers(0, 2, (size, self.n_legit), dtype=bool),
        )

    def resampled(self, fraud_draws: np.ndarray, legit_draws: np.ndarray) -> np.ndarray:
        """Metric of A and B (columns) on transactions drawn by index (bootstrap)."""
        values = np.empty((fraud_draws.shape[0], 2))
        for model in (0, 1):
            fraud_tails = legit_tails = None
            if self.metric != "recall":
                fraud_tails = self._tails(self.fraud_slots[model][fraud_draws])
                # mode="clip" (draws are in range anyway) lets take write straight to out.
                out = self._scratch(legit_draws.shape)
                gathered = np.take(self.legit_slots[model], legit_draws, out=out, mode="clip")
                legit_tails = self._tails(gathered)
            values[:, model] = self._value(self.own[model][fraud_draws], fraud_tails, legit_tails)
        return values

    def swapped(self, fraud_swap: np.ndarray, legit_swap: np.ndarray) -> np.ndarray:
        """Metric of the two pseudo-models that take B's score where ``swap`` is true."""
        own_a, own_b = _pick(fraud_swap, self.own), _pick(fraud_swap, self.own[::-1])
        if self.metric == "recall":
            return np.column_stack([self._value(own_a, None, None), self._value(own_b, None, None)])
        fraud_a = self._tails(_pick(fraud_swap, self.fraud_slots))
        legit_a = self._tails(_pick(legit_swap, self.legit_slots, self._scratch(legit_swap.shape)))
        return np.column_stack(
            [
                self._value(own_a, fraud_a, legit_a),
                self._value(own_b, self.fraud_both - fraud_a, self.legit_both - legit_a),
            ]
        )


def _pick(swap: np.ndarray, pair: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``pair[1]`` where ``swap`` is true, else ``pair[0]`` (4x faster than ``np.where``)."""
    picked = np.multiply(swap.view(np.uint8), pair[1] - pair[0], out=out)
    picked += pair[0]
    return picked


def _slots(grid: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Slot of each score on ``grid`` (see :class:`_PairedScores`)."""
    below = np.searchsorted(grid, scores, side="left")
    equal = grid[np.minimum(below, grid.size - 1)] == scores
    return 2 * below + equal


def _differences(
    draw: Callable[[np.random.Generator, int], np.ndarray],
    rng: np.random.Generator,
    n_resamples: int,
    n: int,
) -> np.ndarray:
    """B − A over ``n_resamples`` resamples of ``n`` transactions, in chunks of bounded memory."""
    chunk = max(1, _CHUNK_CELLS // n)
    values = [draw(rng, min(chunk, n_resamples - start)) for start in range(0, n_resamples, chunk)]
    metric = np.concatenate(values)
    return metric[:, 1] - metric[:, 0]


# -------------------------------------------------------------------- validation


def paired_inputs(
    y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Checked labels and both models' scores, as :func:`compare_scores` reads them.

    Parameters
    ----------
    y_true, scores_a, scores_b : array-like of shape (n,)
        Labels 0/1 and the two models' finite scores.

    Returns
    -------
    tuple of numpy.ndarray
        Labels as int 0/1, and an (n, 2) array of A's and B's scores.

    Raises
    ------
    DataValidationError
        Misaligned, missing or non-finite values, or labels of one class only.
    """
    columns = []
    for name, scores in (("scores_a", scores_a), ("scores_b", scores_b)):
        with prefix_errors(name):
            y, column = validate_labels_and_scores(y_true, scores)
        columns.append(column)
    if np.unique(y).size < 2:
        only = "frauds (1)" if y[0] == 1 else "legitimate transactions (0)"
        raise DataValidationError(
            f"y_true holds only {only}; the comparison needs both classes, so pass "
            "transactions that include frauds and legitimate ones"
        )
    return y, np.column_stack(columns)


def check_metric(metric: str) -> None:
    """Refuse a metric the paired test cannot compare, naming the ones it can.

    Parameters
    ----------
    metric : str
        One of :data:`METRICS`.

    Raises
    ------
    ConfigurationError
        ``metric`` is not one of :data:`METRICS`.
    """
    if metric not in METRICS:
        raise ConfigurationError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


def _check_settings(metric: str, alpha: float, n_resamples: int) -> None:
    check_metric(metric)
    if not 0 < alpha < 1:
        raise ConfigurationError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if not isinstance(n_resamples, int | np.integer) or n_resamples < 1 / alpha:
        # A permutation p-value is at least 1 / (n_resamples + 1).
        raise ConfigurationError(
            f"n_resamples={n_resamples!r} cannot give a p-value below alpha={alpha}; "
            f"pass an integer of at least {int(np.ceil(1 / alpha))} (2000 is typical)"
        )


def check_thresholds(threshold_a: float, threshold_b: float) -> np.ndarray:
    """Both models' alert thresholds as a float array, checked finite.

    Parameters
    ----------
    threshold_a, threshold_b : float
        Operating thresholds of model A and model B (``score >= threshold`` alerts).

    Returns
    -------
    numpy.ndarray of float, shape (2,)
        ``[threshold_a, threshold_b]``.

    Raises
    ------
    ConfigurationError
        When a threshold is not a finite number.
    """
    thresholds = np.array([threshold_a, threshold_b], dtype=float)
    if not np.isfinite(thresholds).all():
        raise ConfigurationError(
            f"thresholds must be finite numbers, got threshold_a={threshold_a!r}, "
            f"threshold_b={threshold_b!r}"
        )
    return thresholds


# ------------------------------------------------------------------ offline A/B


def _mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[dict[str, int], float]:
    """Agreement table of correct decisions and McNemar's exact p-value (statsmodels).

    Only the discordant pairs carry information: under the null each is equally likely to
    favour A or B, so their split is Binomial(b + c, 1/2) (two-sided, capped at 1).
    """
    table = {
        "both_correct": int(np.sum(correct_a & correct_b)),
        "only_a_correct": int(np.sum(correct_a & ~correct_b)),
        "only_b_correct": int(np.sum(~correct_a & correct_b)),
        "both_wrong": int(np.sum(~correct_a & ~correct_b)),
    }
    counts = [
        [table["both_correct"], table["only_a_correct"]],
        [table["only_b_correct"], table["both_wrong"]],
    ]
    # statsmodels returns a Bunch whose attributes type checkers cannot see.
    result: Any = mcnemar(counts, exact=True)
    return table, float(result.pvalue)


def declare_winner(value_a: float, value_b: float, significant: bool) -> tuple[str | None, float]:
    """The winner of a comparison and its relative improvement.

    Parameters
    ----------
    value_a, value_b : float
        The compared metric of model A and model B (higher is better).
    significant : bool
        Whether the test found the difference significant.

    Returns
    -------
    tuple of (str or None, float)
        ``"A"`` or ``"B"`` (the higher value) when significant, else None; and the
        relative improvement of the winner over the loser (with no winner, of B over A),
        NaN when the base is 0.
    """
    winner = ("B" if value_b > value_a else "A") if significant else None
    best, other = (value_a, value_b) if winner == "A" else (value_b, value_a)
    return winner, (best - other) / other if other else float("nan")


def compare_scores(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    *,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    metric: str = "average_precision",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    random_state: int | np.random.Generator | None = None,
) -> ABTestResult:
    """Compare two models scored on the same labelled transactions (a paired test).

    The difference in ``metric`` (B − A) gets a percentile confidence interval from a
    paired bootstrap, stratified by class (frauds and legitimate transactions are
    resampled separately, so every resample has the observed fraud count), and a p-value
    from a paired permutation test: each resample swaps A's and B's score on a random
    half of the transactions. The permutation test is exact under its null (the two
    models' scores are exchangeable on every transaction) and so calibrated at any sample
    size, which a bootstrap p-value is not; it alone declares the winner. McNemar's exact
    test on the decisions ``score >= threshold`` (Dietterich 1998) is reported alongside
    with its table of correct decisions: it asks a different question (which operating
    point makes fewer errors), and with rare fraud its errors are mostly false alarms on
    legitimate transactions, so it can be significant while the fraud ranking is not.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud); both classes must occur.
    scores_a, scores_b : array-like of shape (n,)
        Fraud scores of model A and model B for the same transactions, in the same order.
    threshold_a, threshold_b : float, default 0.5
        Operating thresholds of the two models (McNemar's test and ``metric="recall"``).
    metric : {"average_precision", "roc_auc", "recall"}, default "average_precision"
        Metric compared; ``"recall"`` is the share of frauds at or above the threshold.
        Average precision and ROC AUC equal scikit-learn's, ties included.
    alpha : float, default 0.05
        Significance level of the tests; the interval has confidence ``1 - alpha``.
    n_resamples : int, default 2000
        Number of bootstrap resamples and, separately, of permutations.
    random_state : int, numpy.random.Generator or None
        Seed of the resampling.

    Returns
    -------
    ABTestResult
        ``winner`` ("A", "B" or None), ``improvement`` (relative change of the winner's
        metric over the loser's; with no winner, of B over A; NaN when the base is 0),
        ``p_value``, ``statistical_significance`` (``p_value < alpha``), both metrics,
        ``difference`` and ``ci_low``/``ci_high``, ``mcnemar_p_value`` and its table.

    Raises
    ------
    DataValidationError
        When lengths differ, a score is not finite, a label is not 0/1 or only one class
        occurs.
    ConfigurationError
        When ``metric`` is unknown, ``alpha`` is not in (0, 1), a threshold is not finite
        or ``n_resamples`` is too small for a p-value below ``alpha``.

    Notes
    -----
    With about 100 frauds the percentile interval covers the true difference slightly
    less often than nominal (about 0.88 for 0.90 in simulation), while the permutation
    p-value is exact; ``benchmarks/bench_abtest.py`` reports calibration, power and
    coverage.
    """
    _check_settings(metric, alpha, n_resamples)
    y, scores = paired_inputs(y_true, scores_a, scores_b)
    thresholds = check_thresholds(threshold_a, threshold_b)
    paired = _PairedScores(y, scores, metric, thresholds)
    rng = np.random.default_rng(random_state)
    value_a, value_b = paired.observed()
    difference = value_b - value_a
    bootstrap = _differences(paired.bootstrap, rng, n_resamples, y.size)
    permuted = _differences(paired.permute, rng, n_resamples, y.size)
    extreme = np.abs(permuted) >= abs(difference) - _TIE_TOLERANCE
    p_value = float((1 + extreme.sum()) / (1 + n_resamples))
    ci_low, ci_high = np.quantile(bootstrap, [alpha / 2, 1 - alpha / 2])
    correct = (scores >= thresholds) == (y == 1)[:, None]
    table, mcnemar_p_value = _mcnemar(correct[:, 0], correct[:, 1])
    significant = p_value < alpha
    winner, improvement = declare_winner(float(value_a), float(value_b), significant)
    return ABTestResult(
        winner=winner,
        improvement=improvement,
        p_value=p_value,
        statistical_significance=significant,
        metric=metric,
        metric_a=float(value_a),
        metric_b=float(value_b),
        difference=float(difference),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        mcnemar_p_value=mcnemar_p_value,
        **table,
        n=int(y.size),
        n_fraud=int(y.sum()),
        alpha=float(alpha),
        n_resamples=int(n_resamples),
        threshold_a=float(threshold_a),
        threshold_b=float(threshold_b),
    )


def permutation_differences(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    metric: str,
    thresholds: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray]:
    """The observed B − A and its paired permutation null, as :func:`compare_scores` tests.

    For callers that run the test many times on arrays they built themselves (power
    simulations): nothing is validated, so pass what :func:`compare_scores` would accept.

    Parameters
    ----------
    y : numpy.ndarray of int, shape (n,)
        Labels 0/1, both present.
    scores : numpy.ndarray of float, shape (n, 2)
        Model A's scores in column 0, model B's in column 1.
    metric : str
        One of :data:`METRICS`.
    thresholds : numpy.ndarray of float, shape (2,)
        Both models' thresholds (used by ``metric="recall"``).
    n_permutations : int
        Number of random swaps of A's and B's score per transaction.
    rng : numpy.random.Generator
        Source of the swaps.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        The observed difference and the ``n_permutations`` permuted differences.
    """
    paired = _PairedScores(y, scores, metric, thresholds)
    value_a, value_b = paired.observed()
    return float(value_b - value_a), _differences(paired.permute, rng, n_permutations, y.size)


def model_scores(model: Any, data: pd.DataFrame) -> np.ndarray:
    """Fraud scores of a fitted model on ``data``, refusing a model URI.

    Parameters
    ----------
    model : object
        A fitted scikit-learn model or pyfunc-like object (anything
        :func:`fraudkit.science.models.predict_scores` accepts).
    data : pandas.DataFrame
        Transactions in the Kaggle schema.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Fraud scores.

    Raises
    ------
    ConfigurationError
        When ``model`` is a string (a URI or path): the science layer loads no models.
    ModelError
        When the model cannot score the data.
    """
    if isinstance(model, str):
        # Loading by URI needs MLflow, which the science modules never import.
        raise ConfigurationError(
            f"model {model!r} is a string, not a fitted model; load it first with "
            f"fraudkit.tracking.registry.load_model({model!r}) and pass the loaded model"
        )
    return predict_scores(model, data)


def run_ab_test(model_a: Any, model_b: Any, test_data: pd.DataFrame, **kwargs: Any) -> ABTestResult:
    """Score ``test_data`` with both models and compare them with :func:`compare_scores`.

    Parameters
    ----------
    model_a, model_b : object
        Fitted scikit-learn models or pyfunc-like objects (anything
        :func:`fraudkit.science.models.predict_scores` accepts). Load a registered model first
        with ``fraudkit.tracking.registry.load_model("models:/name@alias")``.
    test_data : pandas.DataFrame
        Labelled transactions in the Kaggle schema (with ``Class``).
    **kwargs
        Keyword arguments of :func:`compare_scores` (``threshold_a``, ``threshold_b``,
        ``metric``, ``alpha``, ``n_resamples``, ``random_state``).

    Returns
    -------
    ABTestResult
        As :func:`compare_scores`; ``result["winner"]`` works as in the seed.

    Raises
    ------
    DataValidationError
        When ``test_data`` has no ``Class`` column, or as :func:`compare_scores`.
    ConfigurationError
        When a model is a string (a URI: load it first), or as :func:`compare_scores`.
    ModelError
        When a model cannot score the data.
    """
    data = require_columns(test_data, "test_data", (LABEL_COLUMN,))
    return compare_scores(
        data[LABEL_COLUMN].to_numpy(),
        model_scores(model_a, data),
        model_scores(model_b, data),
        **kwargs,
    )
